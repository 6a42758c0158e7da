//! `caretaker run` and `caretaker history`: the responder from the command
//! line. A manual run is recorded in the same state database and goes through
//! the same executor, so the database lock keeps it from overlapping with a
//! running daemon and the audit shows who did what.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use prometheus_client::registry::Registry;

use crate::actions::kind::ActionKind;
use crate::config::{known_action, Config};
use crate::metrics::unix_seconds;
use crate::responder::executor::Executor;
use crate::responder::intake::MANUAL_COOLDOWN;
use crate::responder::job::{JobSource, JobStatus, SkipReason};
use crate::responder::metrics::ResponderMetrics;
use crate::responder::state::{JobFilter, NewJob, Recorded, StateStore};

/// After Ctrl-C, how long `caretaker run` waits for the job to be recorded.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

fn open_state(config: &Config) -> anyhow::Result<StateStore> {
    let (store, _) = StateStore::open(
        &config.responder.state_path,
        unix_seconds(SystemTime::now()),
    )
    .with_context(|| format!("opening {}", config.responder.state_path.display()))?;
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

/// Runs `action` once and prints its outcome. Exit 0 on success, 1 on
/// failure, 2 when a safety check skipped it.
pub async fn run(
    config: &Config,
    action: &str,
    database: Option<&str>,
    overrides: Overrides,
) -> anyhow::Result<ExitCode> {
    if !known_action(action, &config.commands) {
        bail!(
            "unknown action {action:?}; known: {}, or command:<name>",
            ActionKind::known_list()
        );
    }
    if let Some(refusal) = override_refusal(action, overrides.ignore_window) {
        bail!("{refusal}");
    }
    let database = match database {
        Some(name) if config.database(name).is_some() => name.to_string(),
        Some(name) => bail!("database {name:?} is not configured"),
        None if config.databases.len() == 1 => config.databases[0].name.clone(),
        None => bail!("say which database with --database (several are configured)"),
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
        _ => bail!("the job was not recorded"),
    };
    let metrics = Arc::new(ResponderMetrics::register(&mut Registry::default()));
    let stop = tokio_util::sync::CancellationToken::new();
    let executor = Executor::new(store, metrics).with_stop(stop.clone());
    let run = executor.execute(config, id);
    tokio::pin!(run);
    let finished = tokio::select! {
        done = &mut run => done,
        _ = tokio::signal::ctrl_c() => {
            // A command runs in its own process group, out of reach of the
            // terminal's Ctrl-C: stop it, record the job, then leave.
            stop.cancel();
            match tokio::time::timeout(INTERRUPT_GRACE, &mut run).await {
                Ok(done) => done,
                Err(_) => {
                    eprintln!("interrupted; job {id} is marked interrupted at the next start");
                    std::process::exit(130);
                }
            }
        }
    };
    let Some(done) = finished else {
        bail!("job {id} could not be run (see the log)");
    };
    println!("{}", serde_json::to_string_pretty(&done)?);
    Ok(match done.status {
        JobStatus::Succeeded => ExitCode::SUCCESS,
        JobStatus::Skipped => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    })
}

/// Prints the latest jobs, newest first.
pub fn history(
    config: &Config,
    limit: usize,
    action: Option<String>,
    database: Option<String>,
) -> anyhow::Result<()> {
    let store = open_state(config)?;
    let jobs = store.jobs(&JobFilter {
        action,
        database,
        status: None,
        limit,
    })?;
    println!(
        "{:>6}  {:<20}  {:<8}  {:<16}  {:<10}  {:<11}  {:<10}  detail",
        "job", "time", "source", "action", "database", "status", "reason"
    );
    for j in jobs {
        let at = j.started_at.unwrap_or(j.created_at);
        let time = humantime::format_rfc3339_seconds(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(at.max(0.0)),
        );
        let detail = j
            .error
            .clone()
            .or_else(|| {
                j.outcome
                    .as_ref()
                    .and_then(|o| o["summary"].as_str().map(str::to_string))
            })
            .unwrap_or_default();
        println!(
            "{:>6}  {:<20}  {:<8}  {:<16}  {:<10}  {:<11}  {:<10}  {}",
            j.id,
            time,
            j.source,
            j.action,
            j.database,
            j.status,
            j.reason.map(SkipReason::as_str).unwrap_or_default(),
            detail
        );
    }
    Ok(())
}
