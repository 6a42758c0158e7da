//! Runs one recorded job through every safety check, then the action.
//!
//! Order: the job is still queued; its database and action exist; for
//! actions that write (to the database, or files such as backups and their
//! temporaries) the database's lock is taken, in this process (jobs wait
//! their turn) and across processes (a lock file beside the database, so
//! `caretaker run` and the daemon never overlap); then, under that lock, the
//! cooldown and breaker decide for automatic jobs (webhook, schedule) and the
//! job is marked running in the same state-database transaction, so of ten
//! simultaneous alerts only one passes a cooldown, whichever process holds
//! them. Every outcome is written to the state database and counted.
//!
//! What each step decides lives in [`super::decide`] as plain functions;
//! this file is the I/O around them: reading and writing the state
//! database, the locks, the action's thread, the metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::actions::kind::ActionKind;
use crate::actions::{registry, ActionContext, ActionError, Outcome};
use crate::config::Config;
use crate::metrics::unix_seconds;
use crate::progress::Reporter;
use crate::responder::decide::{self, Admission, Conclusion};
use crate::responder::job::{AuditKind, JobStatus, SkipReason};
use crate::responder::lock::lock_file;
use crate::responder::metrics::{labels, ResponderMetrics};
use crate::responder::safety::{self, Attempt, Limits};
use crate::responder::state::{AuditEvent, Claim, JobRecord, StateStore};

/// How long a job waits for another process's lock on its database.
const LOCK_WAIT: Duration = Duration::from_secs(5);

pub struct Executor {
    pub state: Arc<StateStore>,
    pub metrics: Arc<ResponderMetrics>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Cancelled at shutdown; running actions see it in their context.
    stop: CancellationToken,
    /// Where actions report progress (`caretaker run`); none in the daemon.
    progress: Reporter,
}

fn now() -> f64 {
    unix_seconds(SystemTime::now())
}

impl Executor {
    pub fn new(state: Arc<StateStore>, metrics: Arc<ResponderMetrics>) -> Self {
        Self {
            state,
            metrics,
            locks: Mutex::new(HashMap::new()),
            stop: CancellationToken::new(),
            progress: Reporter::none(),
        }
    }

    /// Lets actions report their progress to `progress` (`caretaker run`).
    pub fn with_progress(mut self, progress: Reporter) -> Self {
        self.progress = progress;
        self
    }

    /// Lets `stop` (shutdown, or Ctrl-C of `caretaker run`) end running actions
    /// that wait on processes outside caretaker.
    pub fn with_stop(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// This process's turn at `name`'s maintenance (the snapshot loop takes
    /// it too, so a snapshot and a backup of one database never overlap).
    pub fn database_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(name.to_string()).or_default().clone()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StateStore) -> rusqlite::Result<T> + Send + 'static,
    ) -> Option<T> {
        let state = self.state.clone();
        match tokio::task::spawn_blocking(move || f(&state)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "state database error");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "state task failed");
                None
            }
        }
    }

    async fn skip(&self, job: &JobRecord, reason: SkipReason, detail: String) {
        tracing::info!(job = job.id, action = %job.action, database = %job.database, %reason, detail = %detail, "job skipped");
        self.metrics.skipped(&job.action, &job.database, reason);
        let id = job.id;
        let event = audit(
            job,
            AuditKind::Skipped,
            Some(reason.to_string()),
            Some(detail.clone()),
        );
        self.blocking(move |s| {
            s.finish(
                id,
                JobStatus::Skipped,
                Some(reason),
                None,
                Some(&detail),
                now(),
            )?;
            s.audit(&event)
        })
        .await;
    }

    fn set_breaker(&self, job: &JobRecord, open: bool) {
        self.metrics
            .touch()
            .breaker_open
            .get_or_create(&labels(&[
                ("action", &job.action),
                ("database", &job.database),
            ]))
            .set(i64::from(open));
    }

    /// Runs job `id` under `config` and returns its final record.
    pub async fn execute(&self, config: &Config, id: i64) -> Option<JobRecord> {
        self.run(config, id).await.map(|f| f.job)
    }

    /// Runs job `id` under `config`: its final record, and the action's own
    /// outcome when this call ran it.
    pub async fn run(&self, config: &Config, id: i64) -> Option<Finished> {
        let job = self.blocking(move |s| s.job(id)).await.flatten()?;
        let db = config.database(&job.database).cloned();
        let job_labels: BTreeMap<String, String> = job
            .labels
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        let action = job
            .action
            .parse::<ActionKind>()
            .ok()
            .and_then(|kind| registry::build(&kind, config, &job_labels));
        let admission = decide::admit(
            job.status,
            &job.database,
            db.is_some(),
            &job.action,
            action.is_some(),
        );
        let (mut db, action) = match (admission, db, action) {
            (Admission::Proceed, Some(db), Some(action)) => (db, action),
            (Admission::Skip(reason, detail), ..) => {
                self.skip(&job, reason, detail).await;
                return self.reread(id).await;
            }
            _ => return Some(Finished::read(job)),
        };
        let r = &config.responder;
        if job.ignore_window && !job.source.automatic() {
            // A person asked for this run outside the maintenance window.
            db.vacuum.window = None;
            let event = audit(
                &job,
                AuditKind::Override,
                Some("ignore_window".into()),
                None,
            );
            self.blocking(move |s| s.audit(&event)).await;
        }
        let limits = Limits::of(r, Duration::from_secs_f64(job.cooldown_seconds));
        let dry_run = r.dry_run || job.dry_run;
        let locked = (action.mutates() || action.writes_files()) && !dry_run;
        let in_process = self.database_lock(&db.name);
        let _turn = if locked {
            Some(in_process.lock().await)
        } else {
            None
        };
        let file_lock = if locked {
            let path = db.path.clone();
            Some(
                tokio::task::spawn_blocking(move || lock_file(&path, LOCK_WAIT))
                    .await
                    .unwrap_or_else(|e| Err(ActionError::Failed(format!("lock task failed: {e}")))),
            )
        } else {
            None
        };

        // The decision and the start are one transaction, taken under the
        // lock: a job that starts later sees this one running.
        let (a, d, source) = (job.action.clone(), job.database.clone(), job.source);
        let hold = move |attempts: &[Attempt]| decide::hold(source, attempts, now(), &limits);
        let claim = self
            .blocking(move |s| s.claim(id, &a, &d, now(), hold))
            .await?;
        let attempts = match claim {
            Claim::NotQueued => return self.reread(id).await,
            Claim::Held(hold, attempts) => {
                self.set_breaker(&job, safety::breaker_open_failures(&attempts, &limits));
                self.skip(&job, hold.reason(), hold.detail(&limits)).await;
                return self.reread(id).await;
            }
            Claim::Started(attempts) => attempts,
        };
        self.set_breaker(&job, safety::breaker_open_failures(&attempts, &limits));

        let started = Instant::now();
        // Durations are bounded by the configuration; a far deadline is none.
        let deadline = started
            .checked_add(r.action_timeout)
            .unwrap_or(started + Duration::from_secs(10 * 365 * 86_400));
        let stop = self.stop.clone();
        let progress = self.progress.clone();
        let result = match file_lock {
            Some(Err(e)) => Err(e),
            file_lock => tokio::task::spawn_blocking(move || {
                let _file_lock = file_lock;
                let ctx = ActionContext {
                    database: &db,
                    dry_run,
                    deadline,
                    now: SystemTime::now(),
                    stop,
                    progress,
                };
                action.run(&ctx)
            })
            .await
            .unwrap_or_else(|e| Err(ActionError::Failed(format!("action panicked: {e}")))),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.metrics
            .touch()
            .action_duration
            .get_or_create(&labels(&[("action", &job.action)]))
            .observe(seconds);
        let c = decide::conclude(&result, job.source, dry_run, &attempts, now(), &limits);
        self.count(&job, &c);
        let outcome = result.ok();
        let (status, error) = (c.status, c.error.clone());
        match &error {
            Some(e) if status == JobStatus::Failed => {
                tracing::warn!(job = id, action = %job.action, database = %job.database, error = %e, "action failed")
            }
            _ => {
                tracing::info!(job = id, action = %job.action, database = %job.database, %status, seconds, "action finished")
            }
        }
        let (kind, reason) = c.audit;
        let stored = outcome.as_ref().and_then(|o| serde_json::to_value(o).ok());
        let detail = error
            .clone()
            .or_else(|| outcome.as_ref().map(|o| o.summary.clone()));
        let event = audit(&job, kind, Some(reason), detail);
        let skip_reason = c.reason;
        let job = self
            .blocking(move |s| {
                s.finish(
                    id,
                    status,
                    skip_reason,
                    stored.as_ref(),
                    error.as_deref(),
                    now(),
                )?;
                s.audit(&event)?;
                s.job(id)
            })
            .await
            .flatten()?;
        Some(Finished { job, outcome })
    }

    /// Counts a concluded run in the metrics.
    fn count(&self, job: &JobRecord, c: &Conclusion) {
        if let Some(reason) = c.reason {
            self.metrics.skipped(&job.action, &job.database, reason);
        }
        if let Some(result) = c.counted {
            self.metrics
                .touch()
                .action_runs
                .get_or_create(&labels(&[
                    ("action", &job.action),
                    ("database", &job.database),
                    ("result", result.as_str()),
                ]))
                .inc();
        }
        if c.last_success {
            self.metrics
                .touch()
                .action_last_success
                .get_or_create(&labels(&[
                    ("action", &job.action),
                    ("database", &job.database),
                ]))
                .set(now());
        }
        if let Some(open) = c.breaker_open {
            self.set_breaker(job, open);
        }
    }

    async fn reread(&self, id: i64) -> Option<Finished> {
        self.blocking(move |s| s.job(id))
            .await
            .flatten()
            .map(Finished::read)
    }
}

/// A job as [`Executor::run`] left it.
#[derive(Debug, Clone)]
pub struct Finished {
    pub job: JobRecord,
    /// The action's outcome, typed, when this call ran it.
    pub outcome: Option<Outcome>,
}

impl Finished {
    fn read(job: JobRecord) -> Self {
        Finished { job, outcome: None }
    }
}

fn audit(
    job: &JobRecord,
    event: AuditKind,
    reason: Option<String>,
    detail: Option<String>,
) -> AuditEvent {
    AuditEvent {
        at: now(),
        event,
        alertname: job.alertname.clone(),
        fingerprint: job.fingerprint.clone(),
        rule: job.rule.clone(),
        action: Some(job.action.clone()),
        database: Some(job.database.clone()),
        job_id: Some(job.id),
        reason,
        detail,
        credential: job.credential.clone(),
    }
}
