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

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::actions::{registry, ActionContext, ActionError};
use crate::config::Config;
use crate::metrics::unix_seconds;
use crate::responder::metrics::{labels, ResponderMetrics};
use crate::responder::safety::{self, Attempt, Limits};
use crate::responder::state::{AuditEvent, Claim, JobRecord, StateStore};
use crate::store::private;

/// How long a job waits for another process's lock on its database.
const LOCK_WAIT: Duration = Duration::from_secs(5);

pub struct Executor {
    pub state: Arc<StateStore>,
    pub metrics: Arc<ResponderMetrics>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Cancelled at shutdown; running actions see it in their context.
    stop: CancellationToken,
}

/// The lock file that serialises maintenance of one database across processes.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut p = database.as_os_str().to_owned();
    p.push(".caretaker-lock");
    PathBuf::from(p)
}

/// Takes the cross-process lock, waiting up to `wait`. The lock file is
/// created 0600 and never through a link: a link planted at its path would
/// make caretaker create (or, run as root, clobber) a file anywhere.
fn lock_file(database: &Path, wait: Duration) -> Result<File, ActionError> {
    let path = lock_path(database);
    let file = private::open_or_create(&path).map_err(|e| {
        if private::is_link_refusal(&e) {
            ActionError::Refused(format!(
                "the lock file {} is a symbolic link; caretaker does not follow it (remove it)",
                path.display()
            ))
        } else {
            ActionError::Io(e)
        }
    })?;
    let until = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(ActionError::Busy(
                    "another caretaker process is maintaining this database".into(),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
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
        }
    }

    /// Lets `stop` (shutdown, or Ctrl-C of `caretaker run`) end running actions
    /// that wait on processes outside caretaker.
    pub fn with_stop(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    fn database_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
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

    async fn skip(&self, job: &JobRecord, reason: &str, detail: String) {
        tracing::info!(job = job.id, action = %job.action, database = %job.database, reason, detail = %detail, "job skipped");
        self.metrics.skipped(&job.action, &job.database, reason);
        let (id, reason_s) = (job.id, reason.to_string());
        let event = audit(job, "skipped", Some(reason), Some(detail.clone()));
        self.blocking(move |s| {
            s.finish(id, "skipped", Some(&reason_s), None, Some(&detail), now())?;
            s.audit(&event)
        })
        .await;
    }

    /// Runs job `id` under `config` and returns its final record.
    pub async fn execute(&self, config: &Config, id: i64) -> Option<JobRecord> {
        let job = self.blocking(move |s| s.job(id)).await.flatten()?;
        if job.status != "queued" {
            return Some(job);
        }
        let Some(db) = config.database(&job.database).cloned() else {
            self.skip(
                &job,
                "unknown_database",
                format!("database {:?} is not configured", job.database),
            )
            .await;
            return self.blocking(move |s| s.job(id)).await.flatten();
        };
        let job_labels: BTreeMap<String, String> = job
            .labels
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        let Some(action) = registry::build(&job.action, config, &job_labels) else {
            self.skip(
                &job,
                "unknown_action",
                format!("action {:?} is not available", job.action),
            )
            .await;
            return self.blocking(move |s| s.job(id)).await.flatten();
        };
        let r = &config.responder;
        let automatic = matches!(job.source.as_str(), "webhook" | "schedule");
        let mut db = db;
        if job.ignore_window && !automatic {
            // A person asked for this run outside the maintenance window.
            db.vacuum.window = None;
            let event = audit(&job, "override", Some("ignore_window"), None);
            self.blocking(move |s| s.audit(&event)).await;
        }
        let limits = Limits {
            cooldown: Duration::from_secs_f64(job.cooldown_seconds),
            max_runs: r.breaker_max_runs,
            window: r.breaker_window,
            failures: r.breaker_failures,
        };
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
        let (a, d) = (job.action.clone(), job.database.clone());
        let hold = move |attempts: &[Attempt]| {
            automatic
                .then(|| safety::check(attempts, now(), &limits))
                .flatten()
        };
        let claim = self
            .blocking(move |s| s.claim(id, &a, &d, now(), hold))
            .await?;
        let breaker = labels(&[("action", &job.action), ("database", &job.database)]);
        let attempts = match claim {
            Claim::NotQueued => return self.blocking(move |s| s.job(id)).await.flatten(),
            Claim::Held(hold, attempts) => {
                let open = safety::breaker_open_failures(&attempts, &limits);
                self.metrics
                    .breaker_open
                    .get_or_create(&breaker)
                    .set(i64::from(open));
                self.skip(&job, hold.reason(), hold.detail(&limits)).await;
                return self.blocking(move |s| s.job(id)).await.flatten();
            }
            Claim::Started(attempts) => attempts,
        };
        let open = safety::breaker_open_failures(&attempts, &limits);
        self.metrics
            .breaker_open
            .get_or_create(&breaker)
            .set(i64::from(open));

        let started = Instant::now();
        // Durations are bounded by the configuration; a far deadline is none.
        let deadline = started
            .checked_add(r.action_timeout)
            .unwrap_or(started + Duration::from_secs(10 * 365 * 86_400));
        let stop = self.stop.clone();
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
                };
                action.run(&ctx)
            })
            .await
            .unwrap_or_else(|e| Err(ActionError::Failed(format!("action panicked: {e}")))),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.metrics
            .action_duration
            .get_or_create(&labels(&[("action", &job.action)]))
            .observe(seconds);
        let (status, reason, outcome, error) = match result {
            Ok(outcome) => ("succeeded", None, serde_json::to_value(&outcome).ok(), None),
            Err(ActionError::NotConfigured(m)) => ("skipped", Some("disabled"), None, Some(m)),
            Err(ActionError::Refused(m)) => ("skipped", Some("refused"), None, Some(m)),
            Err(e) => ("failed", None, None, Some(e.to_string())),
        };
        match (status, reason) {
            ("skipped", Some(reason)) => {
                self.metrics.skipped(&job.action, &job.database, reason);
            }
            _ => {
                let result = if status == "succeeded" {
                    "success"
                } else {
                    "failure"
                };
                self.metrics
                    .action_runs
                    .get_or_create(&labels(&[
                        ("action", &job.action),
                        ("database", &job.database),
                        ("result", result),
                    ]))
                    .inc();
                if status == "succeeded" && !dry_run {
                    self.metrics
                        .action_last_success
                        .get_or_create(&breaker)
                        .set(now());
                }
                // The breaker as the next job will find it: this run counts
                // now, so a success closes it at once and the last allowed
                // failure opens it (dry runs are not attempts).
                if !dry_run {
                    let mut after = vec![Attempt {
                        at: now(),
                        ok: status == "succeeded",
                        by_hand: !automatic,
                    }];
                    after.extend_from_slice(&attempts);
                    self.metrics
                        .breaker_open
                        .get_or_create(&breaker)
                        .set(i64::from(safety::breaker_open_failures(&after, &limits)));
                }
            }
        }
        match &error {
            Some(e) if status == "failed" => {
                tracing::warn!(job = id, action = %job.action, database = %job.database, error = %e, "action failed")
            }
            _ => {
                tracing::info!(job = id, action = %job.action, database = %job.database, status, seconds, "action finished")
            }
        }
        let event = audit(
            &job,
            if status == "skipped" {
                "skipped"
            } else {
                "ran"
            },
            reason.or(Some(status)),
            error.clone().or_else(|| {
                outcome
                    .as_ref()
                    .and_then(|o| o.get("summary"))
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
            }),
        );
        let reason = reason.map(str::to_string);
        self.blocking(move |s| {
            s.finish(
                id,
                status,
                reason.as_deref(),
                outcome.as_ref(),
                error.as_deref(),
                now(),
            )?;
            s.audit(&event)?;
            s.job(id)
        })
        .await
        .flatten()
    }
}

fn audit(job: &JobRecord, event: &str, reason: Option<&str>, detail: Option<String>) -> AuditEvent {
    AuditEvent {
        at: now(),
        event: event.to_string(),
        alertname: job.alertname.clone(),
        fingerprint: job.fingerprint.clone(),
        rule: job.rule.clone(),
        action: Some(job.action.clone()),
        database: Some(job.database.clone()),
        job_id: Some(job.id),
        reason: reason.map(str::to_string),
        detail,
        credential: job.credential.clone(),
    }
}
