//! When each collection runs, and on which thread.
//!
//! One scheduler task keeps every job's next run; the jobs that are due go
//! into a queue that a fixed set of worker threads drains, each job with its
//! own deadline from the moment a worker takes it. Jobs that start together
//! stay together (a job's next run is its dispatch plus its interval), so at
//! a thousand databases the scheduler wakes once per interval and hands a
//! worker a thousand cheap stamp checks in a row, instead of a thousand
//! timers each waking a blocking thread: that handoff, not the collections,
//! was most of an idle fleet's CPU.
//!
//! Two [`Lane`]s, each with one worker per core, so a long check never
//! holds back a database's figures. A job still running when it is due
//! again skips that turn. Backup folders are watched by one `notify` watcher
//! for all of them (an inotify instance each would run into the host's
//! limit of 128 long before a thousand databases); an event, or
//! [`super::runner::Collection::refresh_database`], runs the job again
//! 200 ms later, when a burst of events has settled. A reload hands each
//! unchanged job's collector and next run to the new collection ([`Carry`]).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::runner::Job;
use super::Collector;
use crate::metrics::{Snapshot, SourceKey};

/// How long a refresh waits for a burst of file events to settle.
const SETTLE: Duration = Duration::from_millis(200);

/// What a worker knows of one job between its runs.
#[derive(Default)]
struct State {
    /// Queued or running: a job is never run twice at once.
    busy: AtomicBool,
    /// The last run failed: its next failure is logged at debug level only.
    failing: AtomicBool,
}

/// Which workers run a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Figures that must stay fresh: database, patterns, activity, backups,
    /// host and process, each a few milliseconds at most.
    Fresh,
    /// Integrity checks and query probes, which may run for minutes.
    Long,
}

/// The queue of one lane.
struct Queue {
    sender: std_mpsc::Sender<usize>,
}

/// What a stopped collection hands to the next one: each job's collector
/// (with its last pass) and next run, by key and fingerprint. A reload that
/// adds one database then reads that database only, instead of all of them
/// again, integrity checks included.
#[derive(Default)]
pub struct Carry {
    jobs: HashMap<(SourceKey, String), (Arc<dyn Collector>, Instant)>,
}

impl Carry {
    fn take(&mut self, job: &Job) -> Option<(Arc<dyn Collector>, Instant)> {
        let fingerprint = job.fingerprint.clone()?;
        self.jobs.remove(&(job.key(), fingerprint))
    }
}

/// A started collection's jobs and their next runs, as the scheduler keeps them.
pub struct Started {
    pub early: mpsc::UnboundedSender<usize>,
    jobs: Arc<[Job]>,
    next: Arc<Mutex<Vec<Instant>>>,
}

impl Started {
    /// The jobs, by the index [`Started::early`] takes.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// What the next collection takes over (call once this one has stopped).
    pub fn carry(&self) -> Carry {
        let next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let jobs = self.jobs.iter().zip(next.iter()).filter_map(|(job, &at)| {
            let key = (job.key(), job.fingerprint.clone()?);
            Some((key, (job.collector.clone(), at)))
        });
        Carry {
            jobs: jobs.collect(),
        }
    }
}

/// Starts the workers and the scheduler of `jobs` on `tracker`; a job that
/// `carry` holds keeps its collector and its next run, the others run now.
pub fn start(
    mut jobs: Vec<Job>,
    mut carry: Carry,
    snapshot: Arc<Snapshot>,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) -> Started {
    let now = Instant::now();
    let next: Vec<Instant> = jobs
        .iter_mut()
        .map(|job| match carry.take(job) {
            Some((collector, at)) => {
                job.collector = collector;
                at
            }
            None => now,
        })
        .collect();
    let next = Arc::new(Mutex::new(next));
    let jobs: Arc<[Job]> = jobs.into();
    let states: Arc<[State]> = jobs.iter().map(|_| State::default()).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lane = || {
        let (queue, rx) = std_mpsc::channel::<usize>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..cores {
            let worker = Worker {
                jobs: jobs.clone(),
                states: states.clone(),
                queue: rx.clone(),
                snapshot: snapshot.clone(),
                cancel: cancel.clone(),
            };
            tracker.spawn_blocking(move || worker.work());
        }
        Queue { sender: queue }
    };
    let queues = [lane(), lane()];
    let (wake, early) = mpsc::unbounded_channel();
    let scheduler = Scheduler {
        jobs: jobs.clone(),
        states,
        queues,
        next: next.clone(),
        watch: FolderWatch::new(wake.clone()),
    };
    tracker.spawn(scheduler.run(early, cancel.clone()));
    Started {
        early: wake,
        jobs,
        next,
    }
}

struct Worker {
    jobs: Arc<[Job]>,
    states: Arc<[State]>,
    queue: Arc<Mutex<std_mpsc::Receiver<usize>>>,
    snapshot: Arc<Snapshot>,
    cancel: CancellationToken,
}

impl Worker {
    /// Runs queued jobs until the scheduler is gone or the collection stops.
    fn work(self) {
        loop {
            let next = self.queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok(i) = next else { break };
            if self.cancel.is_cancelled() {
                break;
            }
            let (Some(job), Some(state)) = (self.jobs.get(i), self.states.get(i)) else {
                continue;
            };
            self.run(job, state);
            state.busy.store(false, Ordering::Release);
        }
    }

    fn run(&self, job: &Job, state: &State) {
        let key = job.key();
        let started = Instant::now();
        // The configuration bounds timeouts; a sum that still overflows means no deadline.
        let deadline = started
            .checked_add(job.timeout)
            .unwrap_or(started + Duration::from_secs(365 * 86_400));
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| job.collector.collect(deadline)));
        let was_failing = state.failing.load(Ordering::Acquire);
        let (collector, database) = (key.collector, key.database.as_deref());
        let result = match outcome {
            Ok(Ok(mut set)) => {
                if let Some(db) = &job.database {
                    set.prefix_label("database", db);
                }
                if was_failing {
                    tracing::info!(collector, database, "collection recovered");
                }
                Some(set)
            }
            Ok(Err(e)) if was_failing => {
                tracing::debug!(collector, database, error = %e, "collection failed again");
                None
            }
            Ok(Err(e)) => {
                tracing::warn!(collector, database, error = %e, "collection failed");
                None
            }
            Err(_) => {
                tracing::error!(collector, database, "collector panicked");
                None
            }
        };
        state.failing.store(result.is_none(), Ordering::Release);
        self.snapshot
            .record(key, result, started.elapsed(), SystemTime::now());
    }
}

struct Scheduler {
    jobs: Arc<[Job]>,
    states: Arc<[State]>,
    /// The fresh lane's queue, then the long one's.
    queues: [Queue; 2],
    /// When each job runs next (read by [`Started::carry`]).
    next: Arc<Mutex<Vec<Instant>>>,
    watch: FolderWatch,
}

impl Scheduler {
    async fn run(mut self, mut early: mpsc::UnboundedReceiver<usize>, cancel: CancellationToken) {
        while let Some(wake_at) = self.dispatch_due(Instant::now()) {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(wake_at.into()) => {}
                asked = early.recv() => {
                    let Some(first) = asked else { break };
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(SETTLE) => {}
                    }
                    let mut asked = vec![first];
                    while let Ok(i) = early.try_recv() {
                        asked.push(i);
                    }
                    asked.sort_unstable();
                    asked.dedup();
                    for i in asked {
                        self.dispatch(i);
                    }
                }
            }
        }
    }

    /// Queues every job due by `now`, the readiness-gating ones first (the
    /// first pass after a start or reload decides when `/-/ready` answers);
    /// returns when the next one is due.
    fn dispatch_due(&mut self, now: Instant) -> Option<Instant> {
        let next = self.next.clone();
        let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
        for gating in [true, false] {
            for i in 0..self.jobs.len() {
                let job = &self.jobs[i];
                if job.gates_readiness != gating || next[i] > now {
                    continue;
                }
                next[i] = now + job.interval;
                self.dispatch(i);
            }
        }
        next.iter().min().copied()
    }

    /// Queues job `i` unless it is queued or running already.
    fn dispatch(&mut self, i: usize) {
        let (Some(job), Some(state)) = (self.jobs.get(i), self.states.get(i)) else {
            return;
        };
        if let Some(dir) = &job.watch {
            self.watch.watch(dir, i);
        }
        if state.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let queue = &self.queues[usize::from(job.lane == Lane::Long)];
        if queue.sender.send(i).is_err() {
            state.busy.store(false, Ordering::Release);
        }
    }
}

/// The folders watched so far, each with its jobs (databases may share one).
type Folders = Arc<Mutex<HashMap<PathBuf, Vec<usize>>>>;

/// One watcher for every job's folder; an event asks for its jobs' early run.
struct FolderWatch {
    watcher: Option<notify::RecommendedWatcher>,
    folders: Folders,
}

impl FolderWatch {
    fn new(wake: mpsc::UnboundedSender<usize>) -> Self {
        let folders: Folders = Arc::default();
        let seen = folders.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            let mut folders = seen.lock().unwrap_or_else(|e| e.into_inner());
            for path in &event.paths {
                // A folder removed is watched again once it is back.
                if matches!(event.kind, EventKind::Remove(_)) {
                    if let Some(jobs) = folders.remove(path.as_path()) {
                        for i in jobs {
                            let _ = wake.send(i);
                        }
                        continue;
                    }
                }
                let jobs = folders
                    .get(path.as_path())
                    .or_else(|| path.parent().and_then(|p| folders.get(p)));
                for &i in jobs.into_iter().flatten() {
                    let _ = wake.send(i);
                }
            }
        });
        if let Err(e) = &watcher {
            tracing::warn!(error = %e, "backup folders are not watched: changes show at the next pass");
        }
        Self {
            watcher: watcher.ok(),
            folders,
        }
    }

    /// Watches `dir` for job `i` once it exists (retried at each dispatch).
    fn watch(&mut self, dir: &std::path::Path, i: usize) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let folders = self.folders.clone();
        let lock = || folders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(jobs) = lock().get_mut(dir) {
            if !jobs.contains(&i) {
                jobs.push(i);
            }
            return;
        }
        // Not under the lock: the watcher's thread takes it to deliver events
        // while `watch` waits for that thread.
        if watcher.watch(dir, RecursiveMode::NonRecursive).is_ok() {
            lock().entry(dir.to_path_buf()).or_default().push(i);
        }
    }
}
