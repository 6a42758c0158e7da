//! `caretaker restore`, `caretaker backups` and `caretaker restore-archive`:
//! the recovery procedures of the runbooks, on the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::actions::archive::{read_archive, restore_archive};
use crate::backups::restore::{list_backups, restore, RestoreChoice};
use crate::backups::verify::verify_backup;
use crate::cli::BackupsCommand;
use crate::config::{Config, DatabaseConfig};

/// The named database, or the only one.
pub fn pick_database<'a>(
    config: &'a Config,
    name: Option<&str>,
) -> anyhow::Result<&'a DatabaseConfig> {
    match name {
        Some(n) => config
            .database(n)
            .with_context(|| format!("database {n:?} is not configured")),
        None if config.databases.len() == 1 => Ok(&config.databases[0]),
        None => bail!("say which database with --database (several are configured)"),
    }
}

pub fn restore_command(
    config: &Config,
    database: Option<&str>,
    backup: Option<PathBuf>,
    before: Option<&str>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let db = pick_database(config, database)?;
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
    let report = restore(db, choice, force)?;
    for (path, why) in &report.skipped {
        println!("skipped {}: {why}", path.display());
    }
    println!(
        "restored {} from {} ({} bytes, {:.1} s); previous files kept: {}",
        db.name,
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
    Ok(ExitCode::SUCCESS)
}

pub fn backups_command(
    config: &Config,
    command: BackupsCommand,
    database: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let db = pick_database(config, database)?;
    let backups = list_backups(db)?;
    let mut failed = 0;
    for b in &backups {
        let taken = humantime::format_rfc3339_seconds(b.taken);
        match command {
            BackupsCommand::List => {
                let state = if b.verified {
                    "checksum ok"
                } else {
                    "checksum missing or wrong"
                };
                println!("{taken}  {:>12}  {state}  {}", b.size, b.path.display());
            }
            BackupsCommand::Verify => {
                let deadline = Instant::now() + Duration::from_secs(3600);
                match verify_backup(&b.path, db.integrity_check, deadline) {
                    Ok(()) => println!("ok      {taken}  {}", b.path.display()),
                    Err(e) => {
                        failed += 1;
                        println!("FAILED  {taken}  {}: {e}", b.path.display());
                    }
                }
            }
        }
    }
    if backups.is_empty() {
        println!("no backups of {}", db.name);
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Loads an archive back into the database it came from (idempotent).
pub fn restore_archive_command(
    config: &Config,
    database: Option<&str>,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let db = pick_database(config, database)?;
    let archive = read_archive(file)?;
    if archive.header.database != db.name {
        bail!(
            "{} holds rows of database {:?}, not {:?}",
            file.display(),
            archive.header.database,
            db.name
        );
    }
    let report = restore_archive(&db.path, file)?;
    println!(
        "{}: {} rows of {} inserted, {} already present",
        file.display(),
        report.inserted,
        archive.header.table,
        report.already_present
    );
    Ok(ExitCode::SUCCESS)
}
