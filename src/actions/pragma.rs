//! The light maintenance statements of the runbooks: `ANALYZE`,
//! `PRAGMA optimize` and `PRAGMA wal_checkpoint(TRUNCATE)`.
//!
//! One type, three statements: each is a single SQL call with the same
//! connection, timing and reporting around it.

use std::time::Instant;

use super::classify;
use super::kind::ActionKind;
use super::{Action, ActionContext, ActionError, Outcome};
use crate::store::maintenance::open_maintenance;

/// Which statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statement {
    Analyze,
    Optimize,
    WalCheckpoint,
}

impl Statement {
    /// The action's name.
    fn name(self) -> &'static str {
        let kind = match self {
            Statement::Analyze => ActionKind::Analyze,
            Statement::Optimize => ActionKind::Optimize,
            Statement::WalCheckpoint => ActionKind::WalCheckpoint,
        };
        kind.builtin_name().unwrap_or_default()
    }
}

pub struct PragmaAction(pub Statement);

fn wal_size(ctx: &ActionContext<'_>) -> f64 {
    let mut wal = ctx.database.path.clone().into_os_string();
    wal.push("-wal");
    std::fs::metadata(wal)
        .map(|m| m.len() as f64)
        .unwrap_or(0.0)
}

impl Action for PragmaAction {
    fn mutates(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let started = Instant::now();
        let conn = open_maintenance(&ctx.database.path, ctx.deadline).map_err(classify)?;
        if ctx.dry_run {
            return Ok(Outcome::new(format!(
                "dry run: would run {}",
                self.0.name()
            )));
        }
        let outcome = match self.0 {
            Statement::Analyze => {
                conn.execute_batch("ANALYZE").map_err(classify)?;
                Outcome::new("ANALYZE updated the query planner's statistics")
            }
            Statement::Optimize => {
                conn.execute_batch("PRAGMA optimize").map_err(classify)?;
                Outcome::new("PRAGMA optimize ran")
            }
            Statement::WalCheckpoint => {
                let before = wal_size(ctx);
                let (busy, log, done): (i64, i64, i64) = conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .map_err(classify)?;
                if busy != 0 {
                    return Err(ActionError::Busy(format!(
                        "checkpoint could not complete: {done} of {log} frames copied while readers held the log"
                    )));
                }
                let after = wal_size(ctx);
                Outcome::new(format!(
                    "checkpointed {done} frames; the write-ahead log was truncated"
                ))
                .figure("frames_checkpointed", done as f64)
                .figure("bytes_freed", (before - after).max(0.0))
            }
        };
        Ok(outcome.figure("seconds", started.elapsed().as_secs_f64()))
    }
}
