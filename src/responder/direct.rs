//! A change that a command makes itself, recorded as a job of caretaker's
//! state database like every `caretaker run`: recorded, marked running,
//! ended `succeeded` or `failed` with its outcome or error, and audited, so
//! `caretaker history`, the audit and `caretaker report` show it beside the
//! other actions.
//!
//! Migrations, restores and one-table restores do not go through the
//! responder's [`executor`](super::executor): they are not actions the
//! configuration, alerts or schedules can name (they need a folder, a table
//! or a backup only a person gives), so they have no `ActionKind`, and each
//! takes the database's maintenance lock itself. What they share is only
//! this: being on the record, succeeded or failed, with the reason.

use std::fmt::Display;
use std::time::{Duration, Instant, SystemTime};

use crate::actions::Outcome;
use crate::config::{Config, DatabaseConfig};
use crate::metrics::unix_seconds;
use crate::responder::intake::MANUAL_COOLDOWN;
use crate::responder::job::{AuditKind, JobSource, JobStatus};
use crate::responder::state::{AuditEvent, Claim, JobRecord, NewJob, Recorded, StateStore};

/// Why the job could not be recorded at all (the change did not start).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("database {0:?} is not configured")]
    NotConfigured(String),
    #[error("say which database with --database (several are configured)")]
    WhichDatabase,
    #[error("state database {}: {source}", .path.display())]
    State {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the job was not recorded")]
    NotRecorded,
}

/// One change to record: its name in the state database, the database it
/// changes, and what was asked (named in a failure's reason, so a refusal
/// in the history says which table or backup it was about).
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub action: &'a str,
    pub database: &'a DatabaseConfig,
    pub dry_run: bool,
    /// `table patterns, mode replace, newest backup that verifies`.
    pub asked: Option<String>,
}

/// A finished job: its record, and the change's own result.
#[derive(Debug)]
pub struct Finished<T, E> {
    pub job: JobRecord,
    pub result: Result<T, E>,
}

fn now() -> f64 {
    unix_seconds(SystemTime::now())
}

/// The database named on the command line, or the only one configured.
pub fn database<'a>(
    config: &'a Config,
    name: Option<&str>,
) -> Result<&'a DatabaseConfig, JobError> {
    match name {
        Some(name) => config
            .database(name)
            .ok_or_else(|| JobError::NotConfigured(name.to_string())),
        None if config.databases.len() == 1 => Ok(&config.databases[0]),
        None => Err(JobError::WhichDatabase),
    }
}

/// Records `change`, runs `work` with the responder's action deadline, and
/// records how it ended: `outcome` describes a success (given the time it
/// took), the error's text is a failure's reason.
pub fn run<T, E: Display>(
    config: &Config,
    change: &Change<'_>,
    work: impl FnOnce(Instant) -> Result<T, E>,
    outcome: impl FnOnce(&T, Duration) -> Outcome,
) -> Result<Finished<T, E>, JobError> {
    let (action, db) = (change.action, change.database);
    let state_error = |source| JobError::State {
        path: config.responder.state_path.clone(),
        source,
    };
    let (store, _) = StateStore::open(&config.responder.state_path, now()).map_err(state_error)?;
    let at = now();
    let job = NewJob {
        key: format!("cli/{action}/{}/{at:.6}/{}", db.name, std::process::id()),
        source: JobSource::Cli,
        action: action.to_string(),
        database: db.name.clone(),
        dry_run: change.dry_run,
        cooldown: MANUAL_COOLDOWN,
        ..Default::default()
    };
    let id = match store.record(&[job], &[], at).map_err(state_error)?.first() {
        Some(Recorded::New(id)) => *id,
        _ => return Err(JobError::NotRecorded),
    };
    match store
        .claim(id, action, &db.name, now(), |_| None::<()>)
        .map_err(state_error)?
    {
        Claim::Started(_) => {}
        _ => return Err(JobError::NotRecorded),
    }
    let started = Instant::now();
    let deadline = started
        .checked_add(config.responder.action_timeout)
        .unwrap_or(started + Duration::from_secs(10 * 365 * 86_400));
    let result = work(deadline);
    let (status, outcome, error) = match &result {
        Ok(done) => (
            JobStatus::Succeeded,
            Some(outcome(done, started.elapsed())),
            None,
        ),
        Err(e) => {
            let error = match &change.asked {
                Some(asked) => format!("{asked}: {e}"),
                None => e.to_string(),
            };
            (JobStatus::Failed, None, Some(error))
        }
    };
    // The reason is the caller's to print (and goes to the audit): logged
    // here too, a terminal would show it twice.
    match &error {
        Some(_) => tracing::warn!(job = id, action, database = %db.name, "job failed"),
        None => tracing::info!(job = id, action, database = %db.name, "job finished"),
    }
    let stored = outcome.as_ref().and_then(|o| serde_json::to_value(o).ok());
    let event = AuditEvent {
        at: now(),
        event: AuditKind::Ran,
        action: Some(action.to_string()),
        database: Some(db.name.clone()),
        job_id: Some(id),
        reason: Some(status.to_string()),
        detail: error.clone().or_else(|| outcome.map(|o| o.summary)),
        ..Default::default()
    };
    store
        .finish(id, status, None, stored.as_ref(), error.as_deref(), now())
        .and_then(|()| store.audit(&event))
        .and_then(|()| store.job(id))
        .map_err(state_error)?
        .map(|job| Finished { job, result })
        .ok_or(JobError::NotRecorded)
}
