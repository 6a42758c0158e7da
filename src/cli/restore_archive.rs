//! `caretaker restore-archive`: rows that `prune_patterns`, `purge_expired`,
//! `tune_patterns` or a table restore archived, put back into their
//! database, as a `restore_archive` job of the state database
//! ([`crate::responder::direct`]).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::actions::archive::{read_archive, restore_archives, RestoreArchiveReport};
use crate::actions::Outcome;
use crate::config::{Config, DatabaseConfig};
use crate::responder::direct::{self, Change};

/// The job's action name in the state database and the audit.
pub const ACTION: &str = "restore_archive";

/// Loads archives back into the database they came from, in one transaction
/// (idempotent).
pub(super) fn restore_archive(
    config: &Config,
    database: Option<&str>,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let db = direct::database(config, database)?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let change = Change {
        action: ACTION,
        database: db,
        dry_run: false,
        asked: Some(format!("archives {}", names.join(", "))),
    };
    let done = direct::run(
        config,
        &change,
        |_| restore(db, files).map_err(|e| format!("{e:#}")),
        |(report, tables), took| {
            Outcome::new(line(&names, tables, report))
                .figure("rows_inserted", report.inserted as f64)
                .figure("rows_already_present", report.already_present as f64)
                .figure("rows_reset", report.reset as f64)
                .figure("seconds", took.as_secs_f64())
        },
    )?;
    match done.result {
        Ok((report, tables)) => {
            println!("job {}: {}", done.job.id, line(&names, &tables, &report));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "caretaker: job {}: restore-archive failed: {e}",
                done.job.id
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Checks that every file holds rows of `db`, then restores them; returns
/// what was done and the tables.
fn restore(
    db: &DatabaseConfig,
    files: &[PathBuf],
) -> anyhow::Result<(RestoreArchiveReport, Vec<String>)> {
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
    Ok((restore_archives(&db.path, files)?, tables))
}

fn line(names: &[String], tables: &[String], report: &RestoreArchiveReport) -> String {
    format!(
        "{}: {} rows of {} inserted, {} already present, {} set back to their archived values",
        names.join(", "),
        report.inserted,
        tables.join(", "),
        report.already_present,
        report.reset
    )
}
