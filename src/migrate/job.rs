//! A migration run as a job of caretaker's state database (see
//! [`crate::responder::direct`]), so `caretaker history` and the audit show
//! it beside the other actions. It takes the same maintenance lock as every
//! mutating action itself (see [`super::run`]).

use std::time::SystemTime;

use crate::actions::Outcome;
use crate::config::Config;
use crate::responder::direct::{self, Change, Finished, JobError};

use super::{MigrateError, Report, Request};

/// The job's action name in the state database and the audit.
pub const ACTION: &str = "migrate";

/// Runs `request` on `database` (or the only database) as a recorded job.
pub fn run(
    config: &Config,
    database: Option<&str>,
    request: &Request,
) -> Result<Finished<Report, MigrateError>, JobError> {
    let db = direct::database(config, database)?;
    let change = Change {
        action: ACTION,
        database: db,
        dry_run: request.dry_run,
        asked: None,
    };
    direct::run(
        config,
        &change,
        |deadline| super::run(db, request, SystemTime::now(), deadline),
        |report, took| {
            Outcome::new(report.summary())
                .figure("migrations", report.files.len() as f64)
                .figure("seconds", took.as_secs_f64())
        },
    )
}
