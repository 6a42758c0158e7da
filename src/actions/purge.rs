//! `purge_expired`: seed 000's daily removal of expired memory entries, with
//! every deleted entry archived first.
//!
//! The seed runs it every night without a switch, so it is not gated by
//! `prune.enabled`; it still goes through the same archive-then-delete batches
//! as pruning (see [`super::archive::sweep`]), because an entry's expiry is
//! the application's wish, not proof that nobody will want it back. The
//! condition is the exporter's (`caretaker_memory_entries_expired`) with
//! "now" taken from the injected clock.

use super::archive::sweep::{
    has_table, open_reader, sql, start, sweep, Destination, SweepReport, WINDOW,
};
use super::archive::{SweepOptions, Utc};
use super::{Action, ActionContext, ActionError, Outcome};

/// Seed 000's expiry test; `:now` is SQLite text (`YYYY-MM-DD HH:MM:SS`).
pub const EXPIRED: &str = "expires_at IS NOT NULL AND datetime(expires_at) < :now";

pub struct PurgeExpired;

impl Action for PurgeExpired {
    fn mutates(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        self.run_with(ctx, &SweepOptions::default())
    }
}

impl PurgeExpired {
    /// [`Action::run`] with explicit options (see [`SweepOptions`]).
    pub fn run_with(
        &self,
        ctx: &ActionContext<'_>,
        opts: &SweepOptions,
    ) -> Result<Outcome, ActionError> {
        let db = ctx.database;
        let now = Utc::from_system(ctx.now);
        let now_text = now.sqlite_text();
        if ctx.dry_run {
            let conn = open_reader(&db.path, opts.busy_timeout)?;
            let n: i64 = if has_table(&conn, "memory_entries")? {
                conn.query_row(
                    &format!("SELECT COUNT(*) FROM memory_entries WHERE {EXPIRED}"),
                    rusqlite::named_params! { ":now": now_text },
                    |r| r.get(0),
                )
                .map_err(sql)?
            } else {
                0
            };
            return Ok(outcome(
                format!("dry run: would archive and delete {n} expired memory entries"),
                n.max(0) as u64,
                0,
            ));
        }
        let mut conn = start(db, opts)?;
        let mut report = SweepReport::default();
        if has_table(&conn, "memory_entries")? {
            let dest = Destination {
                dir: &db.archive_dir,
                database: &db.name,
                at: now,
            };
            sweep(&mut conn, ctx.deadline, &dest, opts, &mut report, |b, w| {
                b.pick(
                        "memory_entries",
                        "expired",
                        &format!("WHERE {EXPIRED} {WINDOW}"),
                        rusqlite::named_params! { ":now": now_text, ":after": w.after, ":limit": w.limit },
                    )
            })?;
        }
        let stopped = report.ending()?;
        let n = report.of("memory_entries");
        tracing::info!(database = %db.name, rows = n, bytes = report.bytes, "purged expired memory entries");
        let mut out = outcome(
            format!(
                "archived and deleted {n} expired memory entries in {} batches{stopped}",
                report.batches
            ),
            n,
            report.bytes,
        );
        if report.stopped_at_deadline {
            out = out.figure("deadline_reached", 1.0);
        }
        Ok(out)
    }
}

fn outcome(summary: String, entries: u64, bytes: u64) -> Outcome {
    Outcome::new(summary)
        .figure("entries_archived", entries as f64)
        .figure("rows_deleted", entries as f64)
        .figure("archive_bytes", bytes as f64)
}
