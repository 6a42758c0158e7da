//! `caretaker migrate DIR`: the pending migrations of a folder, applied
//! safely ([`crate::migrate`]) as a job of the state database; prints what
//! ran (or would run) and the job's number.

use std::process::ExitCode;

use crate::config::Config;
use crate::migrate::{job, Request};

/// Exit 0 when every file was applied (or, dry, passed on the copy), 1 otherwise.
pub(super) fn migrate(
    config: &Config,
    database: Option<&str>,
    request: Request,
) -> anyhow::Result<ExitCode> {
    let done = job::run(config, database, &request)?;
    match done.result {
        Ok(report) => {
            println!("job {}: {}", done.job.id, report.summary());
            for file in &report.files {
                let verb = if report.dry_run { "would run" } else { "ran" };
                println!("  {verb} {file}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("caretaker: job {}: migration failed: {e}", done.job.id);
            Ok(ExitCode::FAILURE)
        }
    }
}
