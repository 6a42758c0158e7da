//! `caretaker history`: the latest jobs from the state database, as a table.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::responder::manual;

/// Prints the latest jobs, newest first.
pub(super) fn history(
    config: &Config,
    limit: usize,
    action: Option<String>,
    database: Option<String>,
) -> anyhow::Result<ExitCode> {
    let jobs = manual::history(config, limit, action, database)?;
    println!(
        "{:>6}  {:<20}  {:<8}  {:<16}  {:<10}  {:<11}  {:<10}  detail",
        "job", "time", "source", "action", "database", "status", "reason"
    );
    for j in jobs {
        let at = j.started_at.unwrap_or(j.created_at);
        let time = humantime::format_rfc3339_seconds(
            SystemTime::UNIX_EPOCH + Duration::from_secs_f64(at.max(0.0)),
        );
        let detail = j
            .error
            .clone()
            .or_else(|| {
                j.outcome
                    .as_ref()
                    .and_then(|o| o["summary"].as_str().map(str::to_string))
            })
            .unwrap_or_default();
        println!(
            "{:>6}  {:<20}  {:<8}  {:<16}  {:<10}  {:<11}  {:<10}  {}",
            j.id,
            time,
            j.source,
            j.action,
            j.database,
            j.status,
            j.reason.map(|r| r.as_str()).unwrap_or_default(),
            detail
        );
    }
    Ok(ExitCode::SUCCESS)
}
