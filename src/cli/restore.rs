//! `caretaker restore`: the recovery procedure of the runbooks, on the
//! command line ([`crate::backups::restore`] does the work).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::backups::restore::{restore as restore_database, RestoreChoice, RestoreReport};
use crate::config::Config;

pub(super) fn restore(
    config: &Config,
    database: Option<&str>,
    backup: Option<PathBuf>,
    moment: Moment<'_>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let db = super::pick_database(config, database)?;
    let choice = match (backup, moment.before, moment.at) {
        (Some(file), ..) => RestoreChoice::File(file),
        (None, Some(t), _) => RestoreChoice::Before(parse_time("--before", t)?),
        (None, None, Some(t)) => RestoreChoice::At(parse_time("--at", t)?),
        (None, None, None) => RestoreChoice::Newest,
    };
    let report = restore_database(db, choice, force)?;
    for (path, why) in &report.skipped {
        println!("skipped {}: {why}", path.display());
    }
    if let Some(taken) = report.taken {
        println!(
            "the state taken at {}",
            humantime::format_rfc3339_millis(taken)
        );
    }
    print_restored(&db.name, &report);
    Ok(ExitCode::SUCCESS)
}

/// `--before` and `--at`, as given.
pub(super) struct Moment<'a> {
    pub(super) before: Option<&'a str>,
    pub(super) at: Option<&'a str>,
}

/// Any offset (`Z`, `+01:00`, `-05:30`): the time it names is what counts.
pub(super) fn parse_time(flag: &str, t: &str) -> anyhow::Result<std::time::SystemTime> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(std::time::SystemTime::from)
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
