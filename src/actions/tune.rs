//! `tune_patterns`: seed 000's pattern library upkeep ("Pattern Library
//! Optimization", "Neural Learning Optimization", "Cache Tuning") as one
//! action that can be undone.
//!
//! The seed runs four separate `UPDATE`s by hand and only reports
//! duplicates. Here the steps run in the seed's order, each with its own
//! switch and the seed's thresholds as defaults (see [`TuneConfig`]):
//! promote, demote, clear stale cache marks, consolidate duplicates.
//!
//! A run is one write transaction. Every row a step is about to change is
//! kept (its values before the run, by rowid); when the steps are done the
//! kept rows are written to rowid archives (`patterns-…-tune.jsonl.zst` and,
//! when embeddings moved, `pattern_embeddings-…-tune.jsonl.zst`), durably,
//! and only then does the transaction commit. A crash before the commit
//! leaves the database as it was (restoring the archive then changes
//! nothing); after it, the archives hold everything needed to undo the run
//! with one `caretaker restore-archive FILES...`. Holding the writer lock for
//! the whole run is the price of "before or after, never half": the steps
//! are single indexed-or-scan `UPDATE`s, not per-row work.
//!
//! A dry run goes through the same statements and rolls them back, so its
//! counts are exact for every step on the state the previous step left; it
//! writes no archive and commits nothing.

mod steps;

use std::time::Instant;

use rusqlite::Connection;

use super::archive::sweep::{begin_immediate, has_table, open_writer, sql, start};
use super::archive::{write_archive, ArchiveHeader, SweepOptions, Utc};
use super::{Action, ActionContext, ActionError, Outcome};
use crate::config::TuneConfig;
use steps::{Consolidated, Run, Thresholds, BEFORE_EMBEDDINGS, BEFORE_PATTERNS};

pub struct TunePatterns;

/// What each step changed (or, in a dry run, would change).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    promoted: u64,
    demoted: u64,
    cache_cleared: u64,
    consolidated: Consolidated,
}

impl Action for TunePatterns {
    fn mutates(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        self.run_with(ctx, &SweepOptions::default())
    }
}

impl TunePatterns {
    /// [`Action::run`] with explicit options: tests shorten the busy timeout
    /// or fail the run just before its commit (`fail_before_commit`).
    pub fn run_with(
        &self,
        ctx: &ActionContext<'_>,
        opts: &SweepOptions,
    ) -> Result<Outcome, ActionError> {
        let db = ctx.database;
        let t = &db.tune;
        if !t.enabled {
            return Err(ActionError::NotConfigured(format!(
                "tuning is not enabled for database {} (set [database.tune] enabled = true)",
                db.name
            )));
        }
        let conn = if ctx.dry_run {
            // No `start`: a dry run leaves the archive folder alone too.
            open_writer(&db.path, opts.busy_timeout)?
        } else {
            start(db, opts)?
        };
        let has_embeddings = check_schema(&conn, t)?;
        let tx = begin_immediate(&conn, opts.busy_timeout)?;
        let run = Run {
            conn: &tx,
            keep_before: !ctx.dry_run,
            has_embeddings,
        };
        run.prepare_before("patterns", BEFORE_PATTERNS)?;
        if has_embeddings {
            run.prepare_before("pattern_embeddings", BEFORE_EMBEDDINGS)?;
        }
        let c = steps_in_order(&run, t, Utc::from_system(ctx.now), ctx.deadline)?;
        if ctx.dry_run {
            drop(tx); // rolls back
            return Ok(outcome(
                format!("dry run, would be: {}", describe(&c)),
                c,
                0,
            ));
        }
        let at = Utc::from_system(ctx.now);
        let mut written = Vec::new();
        for (table, before) in [
            ("patterns", BEFORE_PATTERNS),
            ("pattern_embeddings", BEFORE_EMBEDDINGS),
        ] {
            if table == "pattern_embeddings" && !has_embeddings {
                continue;
            }
            let rows = run.before_rows(before)?;
            if rows.is_empty() {
                continue;
            }
            let cols = steps::columns(&tx, table)?;
            let mut header = ArchiveHeader::of_changed_rows(&db.name, table, cols, at, "tune");
            if table == "pattern_embeddings" {
                header.rekeyed_rowids = run.rekeyed_embeddings()?;
            }
            written.push(write_archive(&db.archive_dir, &header, &rows)?);
        }
        let names: Vec<String> = written
            .iter()
            .map(|a| a.path.display().to_string())
            .collect();
        if opts.fail_before_commit {
            return Err(ActionError::Failed(format!(
                "injected failure before commit; rolled back, nothing changed (archives: {})",
                names.join(" ")
            )));
        }
        tx.commit().map_err(sql)?;
        let bytes: u64 = written.iter().map(|a| a.bytes).sum();
        let undo = match names.is_empty() {
            true => String::new(),
            false => format!("; undo with: caretaker restore-archive {}", names.join(" ")),
        };
        tracing::info!(database = %db.name, archives = written.len(), bytes, "tuned patterns");
        Ok(outcome(describe(&c) + &undo, c, bytes))
    }
}

/// Refuses, before anything changes, a schema the enabled steps cannot work
/// on; returns whether embeddings can be re-pointed.
fn check_schema(conn: &Connection, t: &TuneConfig) -> Result<bool, ActionError> {
    if !has_table(conn, "patterns")? {
        return Err(ActionError::Refused(
            "there is no patterns table; nothing was changed".into(),
        ));
    }
    let have = steps::columns(conn, "patterns")?;
    if have.iter().any(|c| c.eq_ignore_ascii_case("rowid")) {
        return Err(ActionError::Refused(
            "patterns has a column named rowid, which hides the rowid the archive needs; nothing was changed".into(),
        ));
    }
    if conn.prepare("SELECT rowid FROM main.patterns").is_err() {
        return Err(ActionError::Refused(
            "patterns is a WITHOUT ROWID table, which tune_patterns cannot archive; nothing was changed".into(),
        ));
    }
    let needs: [(&str, bool, &[&str]); 4] = [
        ("promote", t.promote, &["confidence", "usage_count"]),
        (
            "demote",
            t.demote,
            &["confidence", "usage_count", "last_used"],
        ),
        ("clear_cache", t.clear_cache, &["usage_count", "last_used"]),
        (
            "consolidate",
            t.consolidate,
            &["id", "type", "pattern_data", "confidence", "usage_count"],
        ),
    ];
    for (step, on, cols) in needs {
        if let Some(missing) = cols.iter().find(|c| on && !have.iter().any(|h| h == *c)) {
            return Err(ActionError::Refused(format!(
                "patterns has no column {missing}, which the {step} step needs (a drifted schema?); \
                 turn the step off with [database.tune] {step} = false or fix the schema; nothing was changed"
            )));
        }
    }
    let embeddings = has_table(conn, "pattern_embeddings")?
        && steps::columns(conn, "pattern_embeddings")?
            .iter()
            .any(|c| c == "pattern_id");
    if t.consolidate {
        let others: Vec<String> = conn
            .prepare(
                "SELECT DISTINCT m.name FROM sqlite_master m, pragma_foreign_key_list(m.name) f
                 WHERE m.type = 'table' AND f.\"table\" = 'patterns' AND m.name <> 'pattern_embeddings'",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql)?;
        if !others.is_empty() {
            return Err(ActionError::Refused(format!(
                "{} reference patterns; consolidating duplicates would leave their rows pointing at removed patterns \
                 (set [database.tune] consolidate = false); nothing was changed",
                others.join(", ")
            )));
        }
    }
    Ok(embeddings)
}

/// Promote, demote, clear, consolidate: each enabled step on the state the
/// previous one left, inside the run's transaction.
fn steps_in_order(
    run: &Run<'_>,
    t: &TuneConfig,
    now: Utc,
    deadline: Instant,
) -> Result<Counts, ActionError> {
    let th = Thresholds::new(now, t);
    let in_time = || match Instant::now() < deadline {
        true => Ok(()),
        false => Err(ActionError::Deadline(
            "the deadline passed between steps; the run was rolled back, nothing changed".into(),
        )),
    };
    let mut c = Counts::default();
    if t.promote {
        in_time()?;
        c.promoted = run.update(&steps::promote(t))?;
    }
    if t.demote {
        in_time()?;
        c.demoted = run.update(&steps::demote(t, &th))?;
    }
    if t.clear_cache {
        in_time()?;
        c.cache_cleared = run.update(&steps::clear_cache(t, &th))?;
    }
    if t.consolidate {
        in_time()?;
        c.consolidated = run.consolidate()?;
    }
    in_time()?;
    Ok(c)
}

fn describe(c: &Counts) -> String {
    let k = &c.consolidated;
    format!(
        "{} patterns promoted, {} demoted, {} stale cache marks cleared; duplicates: \
         {} removed, {} kept ones updated, {} embeddings re-pointed, {} deleted",
        c.promoted,
        c.demoted,
        c.cache_cleared,
        k.removed,
        k.kept_updated,
        k.embeddings_repointed,
        k.embeddings_deleted
    )
}

fn outcome(summary: String, c: Counts, bytes: u64) -> Outcome {
    let k = &c.consolidated;
    Outcome::new(summary)
        .figure("patterns_promoted", c.promoted as f64)
        .figure("patterns_demoted", c.demoted as f64)
        .figure("cache_marks_cleared", c.cache_cleared as f64)
        .figure("duplicates_removed", k.removed as f64)
        .figure("duplicates_kept_updated", k.kept_updated as f64)
        .figure("embeddings_repointed", k.embeddings_repointed as f64)
        .figure("embeddings_deleted", k.embeddings_deleted as f64)
        .figure("archive_bytes", bytes as f64)
}
