//! `caretaker restore`: the recovery procedure of the runbooks, on the
//! command line ([`crate::backups::restore`] does the work).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;

use crate::backups::restore::{
    restore_table as table_from_backup, restore_with, RestoreChoice, RestoreReport, RestoreSeams,
    TableMode,
};
use crate::config::Config;

pub(super) fn restore(
    config: &Config,
    database: Option<&str>,
    backup: Option<PathBuf>,
    moment: Moment<'_>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let db = super::pick_database(config, database)?;
    let report = restore_with(db, choice(backup, moment)?, force, &showing_progress())?;
    print_skipped(&report.skipped);
    print_taken(report.taken);
    print_restored(&db.name, &report);
    Ok(ExitCode::SUCCESS)
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
    let db = super::pick_database(config, database)?;
    let report = table_from_backup(
        db,
        choice(backup, moment)?,
        table,
        mode,
        SystemTime::now(),
        &super::progress::reporter(),
    )?;
    print_skipped(&report.skipped);
    print_taken(report.taken);
    let kept = report.archive.map_or_else(
        || "it was empty".to_string(),
        |p| format!("its previous rows are in {}", p.display()),
    );
    println!(
        "restored table {table} of {} from {}: {} rows deleted, {} inserted; {kept}",
        db.name,
        report.backup.display(),
        report.deleted,
        report.inserted
    );
    Ok(ExitCode::SUCCESS)
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

/// The line that says what was restored and where the previous files went.
pub(super) fn print_restored(database: &str, report: &RestoreReport) {
    println!(
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
    );
}
