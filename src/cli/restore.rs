//! `caretaker restore`: the recovery procedure of the runbooks, on the
//! command line ([`crate::backups::restore`] does the work).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::backups::restore::{restore_with, RestoreChoice, RestoreReport, RestoreSeams};
use crate::config::Config;

pub(super) fn restore(
    config: &Config,
    database: Option<&str>,
    backup: Option<PathBuf>,
    before: Option<&str>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let db = super::pick_database(config, database)?;
    let choice = match (backup, before) {
        (Some(file), _) => RestoreChoice::File(file),
        // Any offset (`Z`, `+01:00`, `-05:30`): the time it names is what counts.
        (None, Some(t)) => RestoreChoice::Before(
            chrono::DateTime::parse_from_rfc3339(t)
                .map(std::time::SystemTime::from)
                .with_context(|| format!("--before {t:?} is not an RFC 3339 time"))?,
        ),
        (None, None) => RestoreChoice::Newest,
    };
    let report = restore_with(db, choice, force, &showing_progress())?;
    for (path, why) in &report.skipped {
        println!("skipped {}: {why}", path.display());
    }
    print_restored(&db.name, &report);
    Ok(ExitCode::SUCCESS)
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
