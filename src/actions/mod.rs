//! Maintenance actions: one file per action behind [`Action`].
//!
//! The responder (Alertmanager webhooks), the scheduler, the HTTP API and the
//! CLI all run actions through the same engine; an action only does its work
//! and reports what it did in figures. Parameters come from configuration,
//! never from an alert.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::DatabaseConfig;
use crate::progress::Reporter;

/// What an action may use while it runs.
pub struct ActionContext<'a> {
    pub database: &'a DatabaseConfig,
    /// Report what would be done, change nothing.
    pub dry_run: bool,
    /// Give up (cleanly) once this has passed.
    pub deadline: Instant,
    /// The injected clock: names, ages and retention are computed from it.
    pub now: SystemTime,
    /// Cancelled at shutdown: actions that wait on something outside
    /// caretaker (a command's child processes) stop waiting and kill it.
    pub stop: CancellationToken,
    /// Where long work reports its stages and bytes (`caretaker run` on a
    /// terminal); nowhere in the daemon.
    pub progress: Reporter,
}

impl ActionContext<'_> {
    /// The database's backup settings; actions on backups need them.
    pub fn backup(&self) -> Result<&crate::config::BackupConfig, ActionError> {
        self.database.backup.as_ref().ok_or_else(|| {
            ActionError::NotConfigured(format!(
                "database {} has no backup folder",
                self.database.name
            ))
        })
    }
}

/// What an action did, for the audit, the API and notifications.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcome {
    /// One human sentence.
    pub summary: String,
    /// Named figures: `bytes_freed`, `rows_archived`, `files_removed`, ...
    pub figures: BTreeMap<String, f64>,
    /// The typed result of a check, for `/metrics` in this process. Not
    /// stored: other processes read the figures of the stored outcome.
    #[serde(skip)]
    pub report: Option<Report>,
}

/// A check's result as the check computed it.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Integrity(crate::store::integrity::IntegrityReport),
}

impl Outcome {
    pub fn new(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            figures: BTreeMap::new(),
            report: None,
        }
    }

    /// Attaches the typed result (builder style).
    pub fn report(mut self, report: Report) -> Self {
        self.report = Some(report);
        self
    }

    /// Adds a figure (builder style).
    pub fn figure(mut self, name: &str, value: f64) -> Self {
        self.figures.insert(name.to_string(), value);
        self
    }
}

/// Why an action did not complete. Messages are for logs and the audit.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The action needs configuration that is missing or disabled.
    #[error("not configured: {0}")]
    NotConfigured(String),
    /// A safety check refused to start (no room, outside the window, ...).
    #[error("refused: {0}")]
    Refused(String),
    /// The database stayed locked past the busy timeout.
    #[error("database busy: {0}")]
    Busy(String),
    /// The deadline passed; everything done so far was rolled back.
    #[error("deadline exceeded: {0}")]
    Deadline(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
}

/// Maps SQLite's busy and interrupt errors to the action errors callers act on.
pub fn classify(e: rusqlite::Error) -> ActionError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            ActionError::Busy(e.to_string())
        }
        Some(ErrorCode::OperationInterrupted) => ActionError::Deadline(e.to_string()),
        _ => ActionError::Sqlite(e),
    }
}

impl From<crate::backups::BackupError> for ActionError {
    /// Variant for variant: the same message either way.
    fn from(e: crate::backups::BackupError) -> Self {
        use crate::backups::BackupError as B;
        match e {
            B::Refused(m) => ActionError::Refused(m),
            B::Deadline(m) => ActionError::Deadline(m),
            B::Sqlite(e) => ActionError::Sqlite(e),
            B::Io(e) => ActionError::Io(e),
            B::Failed(m) => ActionError::Failed(m),
        }
    }
}

/// One kind of maintenance; its name is its [`kind::ActionKind`].
pub trait Action: Send + Sync {
    /// True when it writes to the application database, so it needs the
    /// database's exclusive maintenance lock.
    fn mutates(&self) -> bool;

    /// True when it creates or deletes files (backups, their temporaries,
    /// old files): it takes the same lock as a mutating action, so two runs
    /// on one database never share a file name or delete each other's files.
    fn writes_files(&self) -> bool {
        false
    }

    /// Runs once. Blocking; called from a blocking thread.
    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError>;
}

pub mod archive;
pub mod backup;
pub mod cleanup;
pub mod command;
pub mod integrity;
pub mod kind;
pub mod pragma;
pub mod prune;
pub mod purge;
pub mod registry;
pub mod report;
pub mod restore_drill;
pub mod retention;
pub mod tune;
pub mod vacuum;
pub mod verify_backups;
