//! `caretaker restore-archive`: rows that `prune_patterns` or
//! `purge_expired` archived, loaded back into their database.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use crate::actions::archive::{read_archive, restore_archive as load_archive};
use crate::config::Config;

/// Loads an archive back into the database it came from (idempotent).
pub(super) fn restore_archive(
    config: &Config,
    database: Option<&str>,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let db = super::pick_database(config, database)?;
    let archive = read_archive(file)?;
    if archive.header.database != db.name {
        bail!(
            "{} holds rows of database {:?}, not {:?}",
            file.display(),
            archive.header.database,
            db.name
        );
    }
    let report = load_archive(&db.path, file)?;
    println!(
        "{}: {} rows of {} inserted, {} already present",
        file.display(),
        report.inserted,
        archive.header.table,
        report.already_present
    );
    Ok(ExitCode::SUCCESS)
}
