//! `caretaker restore-archive`: rows that `prune_patterns`, `purge_expired`
//! or `tune_patterns` archived, put back into their database.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::actions::archive::{read_archive, restore_archives};
use crate::config::Config;

/// Loads archives back into the database they came from, in one transaction
/// (idempotent).
pub(super) fn restore_archive(
    config: &Config,
    database: Option<&str>,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let db = super::pick_database(config, database)?;
    let mut tables = Vec::new();
    for file in files {
        let archive = read_archive(file)?;
        if archive.header.database != db.name {
            bail!(
                "{} holds rows of database {:?}, not {:?}",
                file.display(),
                archive.header.database,
                db.name
            );
        }
        tables.push(archive.header.table);
    }
    let report = restore_archives(&db.path, files)?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    println!(
        "{}: {} rows of {} inserted, {} already present, {} set back to their archived values",
        names.join(", "),
        report.inserted,
        tables.join(", "),
        report.already_present,
        report.reset
    );
    Ok(ExitCode::SUCCESS)
}
