//! A migration run as a job of caretaker's state database, like every
//! `caretaker run`: recorded, marked running, ended `succeeded` or `failed`
//! with its outcome or error, and audited, so `caretaker history` and the
//! audit show it beside the other actions.
//!
//! It does not go through the responder's executor: a migration is not an
//! action the configuration, alerts or schedules can name (it needs a folder
//! and options only a person gives), so it has no `ActionKind`; it takes the
//! same maintenance lock itself (see [`super::run`]).

use std::time::{Duration, Instant, SystemTime};

use crate::actions::Outcome;
use crate::config::Config;
use crate::metrics::unix_seconds;
use crate::responder::intake::MANUAL_COOLDOWN;
use crate::responder::job::{AuditKind, JobSource, JobStatus};
use crate::responder::state::{AuditEvent, Claim, JobRecord, NewJob, Recorded, StateStore};

use super::{MigrateError, Report, Request};

/// The job's action name in the state database and the audit.
pub const ACTION: &str = "migrate";

/// Why the job could not be recorded at all (the run did not start).
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

/// A finished migration job: its record, and the run's own result.
#[derive(Debug)]
pub struct MigrateJob {
    pub job: JobRecord,
    pub result: Result<Report, MigrateError>,
}

fn now() -> f64 {
    unix_seconds(SystemTime::now())
}

/// Runs `request` on `database` (or the only database) as a recorded job.
pub fn run(
    config: &Config,
    database: Option<&str>,
    request: &Request,
) -> Result<MigrateJob, JobError> {
    let db = match database {
        Some(name) => config
            .database(name)
            .ok_or_else(|| JobError::NotConfigured(name.to_string()))?,
        None if config.databases.len() == 1 => &config.databases[0],
        None => return Err(JobError::WhichDatabase),
    };
    let state_error = |source| JobError::State {
        path: config.responder.state_path.clone(),
        source,
    };
    let (store, _) = StateStore::open(&config.responder.state_path, now()).map_err(state_error)?;
    let at = now();
    let job = NewJob {
        key: format!("cli/{ACTION}/{}/{at:.6}/{}", db.name, std::process::id()),
        source: JobSource::Cli,
        action: ACTION.to_string(),
        database: db.name.clone(),
        dry_run: request.dry_run,
        cooldown: MANUAL_COOLDOWN,
        ..Default::default()
    };
    let id = match store.record(&[job], &[], at).map_err(state_error)?.first() {
        Some(Recorded::New(id)) => *id,
        _ => return Err(JobError::NotRecorded),
    };
    match store
        .claim(id, ACTION, &db.name, now(), |_| None::<()>)
        .map_err(state_error)?
    {
        Claim::Started(_) => {}
        _ => return Err(JobError::NotRecorded),
    }
    let started = Instant::now();
    let deadline = started
        .checked_add(config.responder.action_timeout)
        .unwrap_or(started + Duration::from_secs(10 * 365 * 86_400));
    let result = super::run(db, request, SystemTime::now(), deadline);
    let (status, outcome, error) = match &result {
        Ok(report) => {
            let outcome = Outcome::new(report.summary())
                .figure("migrations", report.files.len() as f64)
                .figure("seconds", started.elapsed().as_secs_f64());
            (JobStatus::Succeeded, Some(outcome), None)
        }
        Err(e) => (JobStatus::Failed, None, Some(e.to_string())),
    };
    match &error {
        Some(e) => tracing::warn!(job = id, database = %db.name, error = %e, "migration failed"),
        None => tracing::info!(job = id, database = %db.name, "migration finished"),
    }
    let stored = outcome.as_ref().and_then(|o| serde_json::to_value(o).ok());
    let event = AuditEvent {
        at: now(),
        event: AuditKind::Ran,
        action: Some(ACTION.to_string()),
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
        .map(|job| MigrateJob { job, result })
        .ok_or(JobError::NotRecorded)
}
