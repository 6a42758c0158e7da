//! The bounded queue between the webhook (which records jobs) and the workers
//! (which run them). Room is reserved before a job is recorded, so a full
//! queue refuses the request (503, Alertmanager retries) instead of silently
//! dropping a job it acknowledged.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::responder::metrics::ResponderMetrics;

pub struct JobQueue {
    tx: mpsc::Sender<i64>,
    rx: tokio::sync::Mutex<mpsc::Receiver<i64>>,
    metrics: Arc<ResponderMetrics>,
}

/// Room for `n` jobs, taken from the queue.
pub struct Reservation<'a> {
    permits: mpsc::PermitIterator<'a, i64>,
    metrics: &'a ResponderMetrics,
}

impl Reservation<'_> {
    /// Queues a recorded job; false when the reservation is used up.
    pub fn send(&mut self, id: i64) -> bool {
        match self.permits.next() {
            Some(permit) => {
                permit.send(id);
                self.metrics.touch().queue_depth.inc();
                true
            }
            None => false,
        }
    }
}

impl JobQueue {
    pub fn new(capacity: usize, metrics: Arc<ResponderMetrics>) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Self {
            tx,
            rx: tokio::sync::Mutex::new(rx),
            metrics,
        }
    }

    /// Reserves room for `n` jobs, or None when the queue cannot take them all.
    pub fn reserve(&self, n: usize) -> Option<Reservation<'_>> {
        let permits = self.tx.try_reserve_many(n).ok()?;
        Some(Reservation {
            permits,
            metrics: &self.metrics,
        })
    }

    /// The next job id, or None once cancelled.
    pub async fn next(&self, cancel: &CancellationToken) -> Option<i64> {
        let mut rx = tokio::select! {
            _ = cancel.cancelled() => return None,
            rx = self.rx.lock() => rx,
        };
        let id = tokio::select! {
            _ = cancel.cancelled() => None,
            id = rx.recv() => id,
        };
        if id.is_some() {
            self.metrics.touch().queue_depth.dec();
        }
        id
    }
}

/// Starts `n` workers that take jobs from `queue` and hand them to `run`.
pub fn start_workers<F, Fut>(
    n: usize,
    queue: Arc<JobQueue>,
    cancel: CancellationToken,
    run: F,
) -> TaskTracker
where
    F: Fn(i64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let tracker = TaskTracker::new();
    for _ in 0..n.max(1) {
        let (queue, cancel, run) = (queue.clone(), cancel.clone(), run.clone());
        tracker.spawn(async move {
            while let Some(id) = queue.next(&cancel).await {
                run(id).await;
            }
        });
    }
    tracker.close();
    tracker
}
