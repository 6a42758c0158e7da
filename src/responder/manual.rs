//! `caretaker run` and `caretaker history`: the responder from the command
//! line. A manual run is recorded in the same state database and goes through
//! the same executor, so the database lock keeps it from overlapping with a
//! running daemon and the audit shows who did what. Nothing here prints:
//! `crate::cli` shows the results and chooses the exit code.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prometheus_client::registry::Registry;

use crate::actions::kind::ActionKind;
use crate::config::{known_action, Config};
use crate::metrics::unix_seconds;
use crate::progress::Reporter;
use crate::responder::executor::Executor;
use crate::responder::intake::MANUAL_COOLDOWN;
use crate::responder::job::JobSource;
use crate::responder::metrics::ResponderMetrics;
use crate::responder::state::{JobFilter, JobRecord, NewJob, Recorded, StateStore};

/// After an interruption, how long [`run`] waits for the job to be recorded.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// Why a run or a history could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    #[error("unknown action {action:?}; known: {known}, or command:<name>")]
    UnknownAction { action: String, known: String },
    /// An override the action has no use for.
    #[error("{0}")]
    Refused(String),
    #[error("database {0:?} is not configured")]
    NotConfigured(String),
    #[error("say which database with --database (several are configured)")]
    WhichDatabase,
    #[error("opening {}", .path.display())]
    OpenState {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    State(#[from] rusqlite::Error),
    #[error("the job was not recorded")]
    NotRecorded,
    #[error("job {0} could not be run (see the log)")]
    NotRun(i64),
}

/// How a run by hand ended.
#[derive(Debug)]
pub enum ManualRun {
    /// The job's final record (succeeded, failed or skipped).
    Finished(Box<JobRecord>),
    /// Interrupted, and the job did not finish within the grace period; it is
    /// marked interrupted at the next start.
    Interrupted(i64),
}

fn open_state(config: &Config) -> Result<StateStore, ManualError> {
    let (store, _) = StateStore::open(
        &config.responder.state_path,
        unix_seconds(SystemTime::now()),
    )
    .map_err(|source| ManualError::OpenState {
        path: config.responder.state_path.clone(),
        source,
    })?;
    Ok(store)
}

/// What a person may ask of one run by hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// Report what would be done, change nothing.
    pub dry_run: bool,
    /// Run `vacuum` outside `[database.vacuum] window`.
    pub ignore_window: bool,
}

/// The refusal of an override the action has no use for, if any.
pub fn override_refusal(action: &str, ignore_window: bool) -> Option<String> {
    (ignore_window && action.parse::<ActionKind>() != Ok(ActionKind::Vacuum))
        .then(|| format!("ignore_window applies to vacuum only, not {action:?}"))
}

/// Runs `action` once and returns its final record. When `interrupt`
/// completes first, a running command is stopped and the job given
/// [`INTERRUPT_GRACE`] to be recorded. The action reports its progress to
/// `progress`.
pub async fn run(
    config: &Config,
    action: &str,
    database: Option<&str>,
    overrides: Overrides,
    progress: Reporter,
    interrupt: impl Future<Output = ()>,
) -> Result<ManualRun, ManualError> {
    if !known_action(action, &config.commands) {
        return Err(ManualError::UnknownAction {
            action: action.to_string(),
            known: ActionKind::known_list().to_string(),
        });
    }
    if let Some(refusal) = override_refusal(action, overrides.ignore_window) {
        return Err(ManualError::Refused(refusal));
    }
    let database = match database {
        Some(name) if config.database(name).is_some() => name.to_string(),
        Some(name) => return Err(ManualError::NotConfigured(name.to_string())),
        None if config.databases.len() == 1 => config.databases[0].name.clone(),
        None => return Err(ManualError::WhichDatabase),
    };
    let store = Arc::new(open_state(config)?);
    let now = unix_seconds(SystemTime::now());
    let job = NewJob {
        key: format!("cli/{action}/{database}/{now:.6}/{}", std::process::id()),
        source: JobSource::Cli,
        action: action.to_string(),
        database,
        dry_run: overrides.dry_run,
        ignore_window: overrides.ignore_window,
        cooldown: MANUAL_COOLDOWN,
        ..Default::default()
    };
    let id = match store.record(&[job], &[], now)?.first() {
        Some(Recorded::New(id)) => *id,
        _ => return Err(ManualError::NotRecorded),
    };
    let metrics = Arc::new(ResponderMetrics::register(&mut Registry::default()));
    let stop = tokio_util::sync::CancellationToken::new();
    let executor = Executor::new(store, metrics)
        .with_stop(stop.clone())
        .with_progress(progress);
    let run = executor.execute(config, id);
    tokio::pin!(run);
    let finished = tokio::select! {
        done = &mut run => done,
        _ = interrupt => {
            // A command runs in its own process group, out of reach of the
            // terminal's Ctrl-C: stop it, record the job, then leave.
            stop.cancel();
            match tokio::time::timeout(INTERRUPT_GRACE, &mut run).await {
                Ok(done) => done,
                Err(_) => return Ok(ManualRun::Interrupted(id)),
            }
        }
    };
    finished
        .map(|done| ManualRun::Finished(Box::new(done)))
        .ok_or(ManualError::NotRun(id))
}

/// The latest jobs, newest first.
pub fn history(
    config: &Config,
    limit: usize,
    action: Option<String>,
    database: Option<String>,
) -> Result<Vec<JobRecord>, ManualError> {
    let store = open_state(config)?;
    Ok(store.jobs(&JobFilter {
        action,
        database,
        status: None,
        limit,
    })?)
}
