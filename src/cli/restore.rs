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
    before: Option<&str>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let db = super::pick_database(config, database)?;
    let report = restore_with(db, choice(backup, before)?, force, &showing_progress())?;
    print_skipped(&report.skipped);
    print_restored(&db.name, &report);
    Ok(ExitCode::SUCCESS)
}

/// `--table`: one table from the chosen backup, in one transaction.
pub(super) fn restore_table(
    config: &Config,
    database: Option<&str>,
    backup: Option<PathBuf>,
    before: Option<&str>,
    table: &str,
    mode: TableMode,
) -> anyhow::Result<ExitCode> {
    let db = super::pick_database(config, database)?;
    let report = table_from_backup(
        db,
        choice(backup, before)?,
        table,
        mode,
        SystemTime::now(),
        &super::progress::reporter(),
    )?;
    print_skipped(&report.skipped);
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

/// `--backup` or `--before` (any offset: `Z`, `+01:00`, `-05:30`; the time
/// it names is what counts), else the newest backup that verifies.
fn choice(backup: Option<PathBuf>, before: Option<&str>) -> anyhow::Result<RestoreChoice> {
    Ok(match (backup, before) {
        (Some(file), _) => RestoreChoice::File(file),
        (None, Some(t)) => RestoreChoice::Before(
            chrono::DateTime::parse_from_rfc3339(t)
                .map(SystemTime::from)
                .with_context(|| format!("--before {t:?} is not an RFC 3339 time"))?,
        ),
        (None, None) => RestoreChoice::Newest,
    })
}

fn print_skipped(skipped: &[(PathBuf, String)]) {
    for (path, why) in skipped {
        println!("skipped {}: {why}", path.display());
    }
}

/// Restore's options from the command line: progress on standard error.
pub(super) fn showing_progress() -> RestoreSeams<'static> {
    RestoreSeams {
        progress: super::progress::reporter(),
        ..Default::default()
    }
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
