//! `caretaker restore`: the recovery procedure of the runbooks, on the
//! command line ([`crate::backups::restore`] does the work). Every restore,
//! whole or one table, is a job of the state database
//! ([`crate::responder::direct`]): it succeeded with what it did, or failed
//! with the reason, in `caretaker history` and the audit.

use std::fmt::Display;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use crate::actions::Outcome;
use crate::backups::restore::{
    restore_table as table_from_backup, restore_with, RestoreChoice, RestoreReport, RestoreSeams,
    TableMode, TableRestoreReport,
};
use crate::config::{Config, DatabaseConfig};
use crate::responder::direct::{self, Change};

/// The jobs' action names in the state database and the audit.
pub const RESTORE: &str = "restore";
pub const RESTORE_TABLE: &str = "restore_table";

pub(super) fn restore(
    config: &Config,
    database: Option<&str>,
    backup: Option<PathBuf>,
    moment: Moment<'_>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let db = direct::database(config, database)?;
    let choice = choice(backup, moment)?;
    let asked = describe(&choice);
    recorded_restore(config, db, asked, |_| {
        restore_with(db, choice, force, &showing_progress())
    })
}

/// A whole-database restore as a job: `work` restores, the job records it;
/// prints what was restored, or the failure with the job's number.
pub(super) fn recorded_restore<E: Display>(
    config: &Config,
    db: &DatabaseConfig,
    asked: String,
    work: impl FnOnce(Instant) -> Result<RestoreReport, E>,
) -> anyhow::Result<ExitCode> {
    let change = Change {
        action: RESTORE,
        database: db,
        dry_run: false,
        asked: Some(asked),
    };
    let done = direct::run(config, &change, work, |r, took| restored(&db.name, r, took))?;
    match done.result {
        Ok(report) => {
            print_skipped(&report.skipped);
            print_taken(report.taken);
            println!("job {}: {}", done.job.id, restored_line(&db.name, &report));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("caretaker: job {}: restore failed: {e}", done.job.id);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `--table`: one table from the chosen backup (or, with `--at`, the state
/// a chain rebuilds), in one transaction.
pub(super) fn restore_table(
    config: &Config,
    database: Option<&str>,
    backup: Option<PathBuf>,
    moment: Moment<'_>,
    table: &str,
    mode: TableMode,
) -> anyhow::Result<ExitCode> {
    let db = direct::database(config, database)?;
    let choice = choice(backup, moment)?;
    let change = Change {
        action: RESTORE_TABLE,
        database: db,
        dry_run: false,
        asked: Some(format!(
            "table {table}, mode {}, {}",
            mode.as_str(),
            describe(&choice)
        )),
    };
    let done = direct::run(
        config,
        &change,
        |_| {
            let progress = super::progress::reporter();
            table_from_backup(db, choice, table, mode, SystemTime::now(), &progress)
        },
        |r, took| table_restored(&db.name, table, mode, r, took),
    )?;
    match done.result {
        Ok(report) => {
            print_skipped(&report.skipped);
            print_taken(report.taken);
            let kept = report.archive.map_or_else(
                || "it was empty".to_string(),
                |p| format!("its previous rows are in {}", p.display()),
            );
            println!(
                "job {}: restored table {table} of {} from {}: {} rows deleted, {} inserted; {kept}",
                done.job.id,
                db.name,
                report.backup.display(),
                report.deleted,
                report.inserted
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("caretaker: job {}: table restore failed: {e}", done.job.id);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The audit's outcome of a one-table restore.
fn table_restored(
    database: &str,
    table: &str,
    mode: TableMode,
    r: &TableRestoreReport,
    took: Duration,
) -> Outcome {
    Outcome::new(format!(
        "restored table {table} of {database} ({}) from {}: {} rows archived, {} deleted, {} inserted",
        mode.as_str(),
        r.backup.display(),
        r.archived,
        r.deleted,
        r.inserted
    ))
    .figure("rows_archived", r.archived as f64)
    .figure("rows_deleted", r.deleted as f64)
    .figure("rows_inserted", r.inserted as f64)
    .figure("backups_skipped", r.skipped.len() as f64)
    .figure("seconds", took.as_secs_f64())
}

/// The audit's outcome of a whole-database restore.
fn restored(database: &str, r: &RestoreReport, took: Duration) -> Outcome {
    Outcome::new(restored_line(database, r))
        .figure("bytes", r.bytes as f64)
        .figure("backups_skipped", r.skipped.len() as f64)
        .figure("seconds", took.as_secs_f64())
}

/// `--backup`, `--before` or `--at`, else the newest backup that verifies.
fn choice(backup: Option<PathBuf>, moment: Moment<'_>) -> anyhow::Result<RestoreChoice> {
    Ok(match (backup, moment.before, moment.at) {
        (Some(file), ..) => RestoreChoice::File(file),
        (None, Some(t), _) => RestoreChoice::Before(parse_time("--before", t)?),
        (None, None, Some(t)) => RestoreChoice::At(parse_time("--at", t)?),
        (None, None, None) => RestoreChoice::Newest,
    })
}

/// Which backup was asked for, for a failure's reason.
pub(super) fn describe(choice: &RestoreChoice) -> String {
    match choice {
        RestoreChoice::Newest => "the newest backup that verifies".to_string(),
        RestoreChoice::File(f) => format!("backup {}", f.display()),
        RestoreChoice::Before(t) => format!(
            "the newest backup that verifies before {}",
            humantime::format_rfc3339_seconds(*t)
        ),
        RestoreChoice::At(t) => format!(
            "the state a chain rebuilds at {}",
            humantime::format_rfc3339_millis(*t)
        ),
    }
}

fn print_skipped(skipped: &[(PathBuf, String)]) {
    for (path, why) in skipped {
        println!("skipped {}: {why}", path.display());
    }
}

/// With `--at`: the moment the restored state was taken.
fn print_taken(taken: Option<SystemTime>) {
    if let Some(taken) = taken {
        println!(
            "the state taken at {}",
            humantime::format_rfc3339_millis(taken)
        );
    }
}

/// Restore's options from the command line: progress on standard error.
pub(super) fn showing_progress() -> RestoreSeams<'static> {
    RestoreSeams {
        progress: super::progress::reporter(),
        ..Default::default()
    }
}

/// `--before` and `--at`, as given.
pub(super) struct Moment<'a> {
    pub(super) before: Option<&'a str>,
    pub(super) at: Option<&'a str>,
}

/// Any offset (`Z`, `+01:00`, `-05:30`): the time it names is what counts.
pub(super) fn parse_time(flag: &str, t: &str) -> anyhow::Result<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(SystemTime::from)
        .with_context(|| format!("{flag} {t:?} is not an RFC 3339 time"))
}

/// What was restored and where the previous files went.
fn restored_line(database: &str, report: &RestoreReport) -> String {
    format!(
        "restored {database} from {} ({} bytes, {:.1} s); previous files kept: {}",
        report.backup.display(),
        report.bytes,
        report.seconds,
        report
            .moved_aside
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}
