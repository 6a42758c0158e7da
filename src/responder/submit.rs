//! How work enters the responder: an Alertmanager notification, a run by
//! hand, the scheduler's jobs and the jobs left queued by the last stop; and
//! the reads of the history that the API answers with.
//!
//! Every way in reserves queue room first, records durably, then queues, so
//! a full queue refuses the work instead of dropping a job it acknowledged.
//! The callers (the HTTP layer, the daemon) see only these methods and
//! [`SubmitError`]; the state database's blocking calls hop to blocking
//! threads here, never on the callers' async workers.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::metrics::unix_seconds;
use crate::responder::intake::{self, IntakeSummary};
use crate::responder::job::SkipReason;
use crate::responder::metrics::ResponderMetrics;
use crate::responder::plan::{Alert, Decision, Notification};
use crate::responder::safety;
use crate::responder::state::{AuditEvent, JobFilter, JobRecord, NewJob, Recorded};
use crate::responder::Responder;

/// Why work could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue has no room: retry later.
    #[error("the job queue is full")]
    QueueFull,
    /// API runs of this action on this database are used up for now.
    #[error("rate limit reached; retry in {0:?}")]
    RateLimited(Duration),
    #[error("state database: {0}")]
    State(#[from] rusqlite::Error),
    #[error("state database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("job was not recorded")]
    NotRecorded,
}

impl Responder {
    /// The responder's counters (shared with the HTTP layer's own).
    pub fn metrics(&self) -> &ResponderMetrics {
        &self.executor.metrics
    }

    /// Takes one notification: plans it, reserves queue room, records every
    /// decision durably, queues the new jobs. Only a failure to record is an
    /// error of ours; a full queue asks the sender to retry.
    pub async fn receive(
        &self,
        notification: Notification,
        config: Arc<Config>,
    ) -> Result<IntakeSummary, SubmitError> {
        let identities = self.identities(&config);
        let planned = intake::decisions(&notification, &config, &identities);
        let Some(mut room) = self.queue.reserve(intake::jobs_needed(&planned)) else {
            self.metrics().skipped("", "", SkipReason::QueueFull);
            tracing::warn!(
                alerts = notification.alerts.len(),
                "job queue full; asking Alertmanager to retry"
            );
            return Err(SubmitError::QueueFull);
        };
        let summary = self
            .record(planned, notification.notification_reason, config)
            .await?;
        for id in &summary.accepted {
            if !room.send(*id) {
                tracing::error!(
                    job = id,
                    "no reserved room for a recorded job; it runs after the next restart"
                );
            }
        }
        Ok(summary)
    }

    /// Records a planned notification durably. The common case (new alerts, no
    /// resolved episode, no duplicate) awaits the group commit on this task; only
    /// the steps that read the state database run on a blocking thread.
    async fn record(
        &self,
        planned: Vec<(Alert, Vec<Decision>)>,
        reason: Option<String>,
        config: Arc<Config>,
    ) -> Result<IntakeSummary, SubmitError> {
        let executor = self.executor.clone();
        let now = unix_seconds(SystemTime::now());
        if intake::prepare_reads_state(&planned) {
            return blocking(move || {
                let (state, metrics) = (&executor.state, &executor.metrics);
                intake::record(&planned, reason.as_deref(), &config, state, metrics, now)
            })
            .await;
        }
        let intake::Prepared {
            jobs,
            events,
            mut summary,
        } = intake::prepare(&planned, &config, &executor.state, &executor.metrics, now)?;
        let recorded = executor
            .state
            .record_async(jobs.clone(), events, now)
            .await?;
        let reads_state = intake::settle_touches_state(&recorded);
        let settle = move || {
            let (state, metrics) = (&executor.state, &executor.metrics);
            let reason = reason.as_deref();
            intake::settle(
                &planned,
                reason,
                &jobs,
                recorded,
                state,
                metrics,
                now,
                &mut summary,
            )
            .map(|()| summary)
        };
        if reads_state {
            blocking(settle).await
        } else {
            Ok(settle()?)
        }
    }

    /// Records and queues one run by hand, unless `max_runs` runs of its
    /// action on its database were recorded within `window`. Returns its id.
    pub async fn run_by_hand(
        &self,
        job: NewJob,
        max_runs: u32,
        window: Duration,
    ) -> Result<i64, SubmitError> {
        let Some(mut room) = self.queue.reserve(1) else {
            return Err(SubmitError::QueueFull);
        };
        // The rate check and the recording are one step: two concurrent
        // requests cannot both take the last run of a window.
        let turn = self.manual_turn.lock().await;
        let now = unix_seconds(SystemTime::now());
        let store = self.executor.state.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            let since = now - window.as_secs_f64();
            let recent = store.api_runs_since(&job.action, &job.database, since)?;
            if let Some(wait) = safety::rate_hold(&recent, now, max_runs, window) {
                return Ok(Err(wait));
            }
            store.record(&[job], &[], now).map(Ok)
        })
        .await;
        drop(turn);
        let id = match recorded?? {
            Ok(r) => match r.first() {
                Some(Recorded::New(id)) => *id,
                _ => return Err(SubmitError::NotRecorded),
            },
            Err(wait) => return Err(SubmitError::RateLimited(wait)),
        };
        room.send(id);
        Ok(id)
    }

    /// Records and queues jobs that need no reply (schedules).
    pub async fn submit(&self, jobs: Vec<NewJob>) {
        let Some(mut room) = self.queue.reserve(jobs.len()) else {
            tracing::warn!(
                jobs = jobs.len(),
                "job queue full; scheduled jobs not recorded"
            );
            return;
        };
        let store = self.executor.state.clone();
        let now = unix_seconds(SystemTime::now());
        match tokio::task::spawn_blocking(move || store.record(&jobs, &[], now)).await {
            Ok(Ok(recorded)) => {
                for r in recorded {
                    if let Recorded::New(id) = r {
                        room.send(id);
                    }
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "could not record scheduled jobs"),
            Err(e) => tracing::error!(error = %e, "recording task failed"),
        }
    }

    /// Queues (up to `room` of) the jobs accepted before the last stop that
    /// never started.
    pub async fn requeue(&self, room: usize) {
        let store = self.executor.state.clone();
        let queued = tokio::task::spawn_blocking(move || store.queued()).await;
        let ids = match queued {
            Ok(Ok(ids)) => ids,
            _ => return,
        };
        if let Some(mut reserved) = self.queue.reserve(ids.len().min(room)) {
            for id in &ids {
                reserved.send(*id);
            }
        }
        if !ids.is_empty() {
            tracing::info!(
                jobs = ids.len(),
                "re-queued jobs accepted before the last stop"
            );
        }
    }

    /// Recent jobs, newest first.
    pub async fn jobs(&self, filter: JobFilter) -> Result<Vec<JobRecord>, SubmitError> {
        let store = self.executor.state.clone();
        blocking(move || store.jobs(&filter)).await
    }

    /// One job, if it exists.
    pub async fn job(&self, id: i64) -> Result<Option<JobRecord>, SubmitError> {
        let store = self.executor.state.clone();
        blocking(move || store.job(id)).await
    }

    /// The latest audit events, newest first.
    pub async fn audit_events(&self, limit: usize) -> Result<Vec<AuditEvent>, SubmitError> {
        let store = self.executor.state.clone();
        blocking(move || store.audit_events(limit)).await
    }
}

/// Runs state-database work that may wait on SQLite on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, SubmitError> {
    Ok(tokio::task::spawn_blocking(work).await??)
}
