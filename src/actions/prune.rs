//! `prune_patterns`: seed 001's pattern pruning and seed 000's retention,
//! with every deleted row archived first.
//!
//! The seeds delete with one big `DELETE` each, after an export that can
//! silently differ from what the delete removes (the clock moves between the
//! two statements, and the application keeps writing). Here the rows are
//! picked, archived and deleted by rowid in one write transaction per batch
//! (see [`super::archive::sweep`]), in this order:
//!
//! 1. patterns matching any of the three criteria, with their embeddings;
//! 2. embeddings whose pattern is gone (seed 000's "orphaned embeddings");
//! 3. task trajectories and 4. verification history older than retention.
//!
//! The criteria are the exporter's (`caretaker_pattern_prune_candidates`),
//! with the thresholds computed once from the injected clock and bound as
//! parameters; the integration tests check, row by row, that the gauge and
//! the action pick the same patterns. The exporter still uses the seed's
//! values (90 days, 3 uses, 0.3, 180 days), which are the defaults here: until
//! it binds [`CANDIDATE`] with [`PruneThresholds`] too, changing the prune
//! thresholds makes the gauge and the action disagree. Pruning deletes rows,
//! so it runs only when enabled.

use std::time::Duration;

use rusqlite::{named_params, Connection};

use super::archive::sweep::{
    has_table, open_reader, sql, start, sweep, Batch, Destination, SweepReport, Window, WINDOW,
};
use super::archive::{SweepOptions, Utc};
use super::{Action, ActionContext, ActionError, Outcome};
use crate::config::PruneConfig;

/// Seed 001's three criteria (old and little used; low confidence and never
/// used; old and never used).
pub const CANDIDATE: &str = "((last_used < :unused_before AND usage_count < :unused_max_usage)
  OR (confidence < :low_confidence AND last_used IS NULL)
  OR (created_at < :never_used_before AND usage_count = 0))";

/// Seed 000's orphans, as the exporter counts them.
const ORPHAN: &str =
    "NOT EXISTS (SELECT 1 FROM patterns p WHERE p.id = pattern_embeddings.pattern_id)";

pub struct PrunePatterns;

/// The configured thresholds as SQLite text, computed once per run.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneThresholds {
    pub unused_before: String,
    pub unused_max_usage: i64,
    pub low_confidence: f64,
    pub never_used_before: String,
    pub trajectories_before: String,
    pub verifications_before: String,
}

impl PruneThresholds {
    pub fn new(now: Utc, p: &PruneConfig) -> Self {
        let before = |age: Duration| now.minus(age).sqlite_text();
        Self {
            unused_before: before(p.unused_after),
            unused_max_usage: p.unused_max_usage,
            low_confidence: p.low_confidence,
            never_used_before: before(p.never_used_after),
            trajectories_before: before(p.trajectory_retention),
            verifications_before: before(p.verification_retention),
        }
    }
}

/// What a run removed (or, in a dry run, would remove), per table.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    patterns: u64,
    embeddings: u64,
    trajectories: u64,
    verifications: u64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.patterns + self.embeddings + self.trajectories + self.verifications
    }
}

impl Action for PrunePatterns {
    fn mutates(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        self.run_with(ctx, &SweepOptions::default())
    }
}

impl PrunePatterns {
    /// [`Action::run`] with explicit options (tests shorten the busy timeout,
    /// shrink batches or inject a failure).
    pub fn run_with(
        &self,
        ctx: &ActionContext<'_>,
        opts: &SweepOptions,
    ) -> Result<Outcome, ActionError> {
        let db = ctx.database;
        if !db.prune.enabled {
            return Err(ActionError::NotConfigured(format!(
                "pruning is not enabled for database {} (set [database.prune] enabled = true)",
                db.name
            )));
        }
        let th = PruneThresholds::new(Utc::from_system(ctx.now), &db.prune);
        if ctx.dry_run {
            let conn = open_reader(&db.path, opts.busy_timeout)?;
            let c = count(&conn, &th)?;
            let summary = format!(
                "dry run: would archive and delete {} patterns, {} embeddings, {} trajectories and {} verifications",
                c.patterns, c.embeddings, c.trajectories, c.verifications
            );
            return Ok(outcome(summary, c, 0));
        }
        let mut conn = start(db, opts)?;
        let dest = Destination {
            dir: &db.archive_dir,
            database: &db.name,
            at: Utc::from_system(ctx.now),
        };
        let mut report = SweepReport::default();
        for stage in [
            Stage::Patterns,
            Stage::Orphans,
            Stage::Trajectories,
            Stage::Verifications,
        ] {
            if report.stopped_at_deadline || !stage.applies(&conn)? {
                continue;
            }
            sweep(
                &mut conn,
                ctx.deadline,
                &dest,
                opts,
                &mut report,
                |b, window| stage.pick(b, &th, window),
            )?;
        }
        let stopped = report.ending()?;
        let c = Counts {
            patterns: report.of("patterns"),
            embeddings: report.of("pattern_embeddings"),
            trajectories: report.of("task_trajectories"),
            verifications: report.of("verification_history"),
        };
        let summary = format!(
            "archived and deleted {} patterns, {} embeddings, {} trajectories and {} verifications in {} batches{stopped}",
            c.patterns, c.embeddings, c.trajectories, c.verifications, report.batches
        );
        tracing::info!(database = %db.name, rows = c.total(), bytes = report.bytes, archives = report.archives.len(), "pruned");
        let mut out = outcome(summary, c, report.bytes);
        if report.stopped_at_deadline {
            out = out.figure("deadline_reached", 1.0);
        }
        Ok(out)
    }
}

fn outcome(summary: String, c: Counts, bytes: u64) -> Outcome {
    Outcome::new(summary)
        .figure("patterns_archived", c.patterns as f64)
        .figure("embeddings_archived", c.embeddings as f64)
        .figure("trajectories_archived", c.trajectories as f64)
        .figure("verifications_archived", c.verifications as f64)
        .figure("rows_deleted", c.total() as f64)
        .figure("archive_bytes", bytes as f64)
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Patterns,
    Orphans,
    Trajectories,
    Verifications,
}

impl Stage {
    fn applies(self, conn: &Connection) -> Result<bool, ActionError> {
        Ok(match self {
            Stage::Patterns => has_table(conn, "patterns")?,
            Stage::Orphans => {
                has_table(conn, "patterns")? && has_table(conn, "pattern_embeddings")?
            }
            Stage::Trajectories => has_table(conn, "task_trajectories")?,
            Stage::Verifications => has_table(conn, "verification_history")?,
        })
    }

    /// Picks one batch; returns the rows of the stage's main table.
    fn pick(
        self,
        b: &mut Batch<'_>,
        th: &PruneThresholds,
        w: Window,
    ) -> Result<usize, ActionError> {
        match self {
            Stage::Patterns => {
                let n = b.pick(
                    "patterns",
                    "prune",
                    &format!("WHERE {CANDIDATE} {WINDOW}"),
                    named_params! {
                        ":unused_before": th.unused_before,
                        ":unused_max_usage": th.unused_max_usage,
                        ":low_confidence": th.low_confidence,
                        ":never_used_before": th.never_used_before,
                        ":after": w.after,
                        ":limit": w.limit,
                    },
                )?;
                if n > 0 && b.has_table("pattern_embeddings")? {
                    let ids = b.rowids_json("patterns");
                    b.pick(
                        "pattern_embeddings",
                        "prune",
                        "WHERE pattern_id IN (SELECT id FROM patterns
                           WHERE rowid IN (SELECT value FROM json_each(?1)))",
                        [ids],
                    )?;
                }
                Ok(n)
            }
            Stage::Orphans => b.pick(
                "pattern_embeddings",
                "orphaned",
                &format!("WHERE {ORPHAN} {WINDOW}"),
                named_params! { ":after": w.after, ":limit": w.limit },
            ),
            Stage::Trajectories => b.pick(
                "task_trajectories",
                "retention",
                &format!("WHERE created_at < :before {WINDOW}"),
                named_params! { ":before": th.trajectories_before, ":after": w.after, ":limit": w.limit },
            ),
            Stage::Verifications => b.pick(
                "verification_history",
                "retention",
                &format!("WHERE timestamp < :before {WINDOW}"),
                named_params! { ":before": th.verifications_before, ":after": w.after, ":limit": w.limit },
            ),
        }
    }
}

/// The dry run: the same criteria, counted in one read transaction.
fn count(conn: &Connection, th: &PruneThresholds) -> Result<Counts, ActionError> {
    let n = |sql_text: &str, params: &[(&str, &dyn rusqlite::ToSql)]| -> Result<u64, ActionError> {
        conn.query_row(sql_text, params, |r| r.get::<_, i64>(0))
            .map(|v| v.max(0) as u64)
            .map_err(sql)
    };
    let criteria = named_params! {
        ":unused_before": th.unused_before,
        ":unused_max_usage": th.unused_max_usage,
        ":low_confidence": th.low_confidence,
        ":never_used_before": th.never_used_before,
    };
    let tx = conn.unchecked_transaction().map_err(sql)?;
    let mut c = Counts::default();
    if has_table(&tx, "patterns")? {
        c.patterns = n(
            &format!("SELECT COUNT(*) FROM patterns WHERE {CANDIDATE}"),
            criteria,
        )?;
        if has_table(&tx, "pattern_embeddings")? {
            c.embeddings = n(
                &format!(
                    "SELECT COUNT(*) FROM pattern_embeddings
                     WHERE pattern_id IN (SELECT id FROM patterns WHERE {CANDIDATE}) OR {ORPHAN}"
                ),
                criteria,
            )?;
        }
    }
    if has_table(&tx, "task_trajectories")? {
        c.trajectories = n(
            "SELECT COUNT(*) FROM task_trajectories WHERE created_at < :before",
            named_params! { ":before": th.trajectories_before },
        )?;
    }
    if has_table(&tx, "verification_history")? {
        c.verifications = n(
            "SELECT COUNT(*) FROM verification_history WHERE timestamp < :before",
            named_params! { ":before": th.verifications_before },
        )?;
    }
    tx.finish().map_err(sql)?;
    Ok(c)
}
