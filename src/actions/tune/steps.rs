//! The four steps of `tune_patterns` as SQL, run inside the run's one write
//! transaction, each on the state the previous one left.
//!
//! Before a step changes a row, the row's values go into a temporary table
//! keyed by rowid (`INSERT OR IGNORE`: a row that two steps change keeps the
//! values it had before the run). The archive is written from those tables,
//! so one restore puts every row back as it was before the run, whichever
//! steps touched it.
//!
//! Every condition also tests the SQLite type of the values it compares: a
//! `usage_count` stored as text (`'200'`) sorts above every number and would
//! otherwise be "over 100"; such rows are left alone. A `last_used` is
//! compared only when it is ISO 8601 text (`YYYY-MM-DD...`, as the seeds
//! write it): an epoch stored as text (`'1700000000'`) sorts before every
//! date and would look months old.

use rusqlite::{Connection, ToSql};

use crate::actions::archive::sweep::sql;
use crate::actions::archive::{ArchiveValue, Utc};
use crate::actions::ActionError;
use crate::config::TuneConfig;

use crate::actions::archive::quote;

/// Named parameters of one statement.
type Params<'a> = Vec<(&'a str, &'a dyn ToSql)>;

/// Which of the patterns' rows one score or cache step changes, and how.
pub(super) struct Update<'a> {
    pub set: &'static str,
    pub filter: &'static str,
    /// Parameters of `filter`; `set` may use these and `set_params`.
    pub params: Params<'a>,
    pub set_params: Params<'a>,
}

const PROMOTE_SET: &str = "confidence = MIN(:ceiling, confidence + :step)";
const PROMOTE_WHERE: &str = "typeof(usage_count) = 'integer' AND usage_count > :min_usage
  AND typeof(confidence) IN ('integer', 'real') AND confidence < :ceiling";
const DEMOTE_SET: &str = "confidence = MAX(:floor, confidence - :step)";
// `confidence > :floor`: the seed's MAX(0.3, confidence - 0.1) would raise a
// pattern below the floor to it.
const DEMOTE_WHERE: &str =
    "typeof(last_used) = 'text' AND last_used GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'
  AND last_used < :before
  AND typeof(usage_count) = 'integer' AND usage_count < :max_usage
  AND typeof(confidence) IN ('integer', 'real') AND confidence > :floor";
const CLEAR_SET: &str = "last_used = NULL";
const CLEAR_WHERE: &str =
    "typeof(last_used) = 'text' AND last_used GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'
  AND last_used < :clear_before
  AND typeof(usage_count) = 'integer' AND usage_count < :clear_max_usage";

/// The thresholds of one run, computed once from the injected clock.
pub(super) struct Thresholds {
    pub demote_before: String,
    pub clear_before: String,
}

impl Thresholds {
    pub fn new(now: Utc, t: &TuneConfig) -> Self {
        Self {
            demote_before: now.minus(t.demote_unused_after).sqlite_text(),
            clear_before: now.minus(t.clear_unused_after).sqlite_text(),
        }
    }
}

pub(super) fn promote(t: &TuneConfig) -> Update<'_> {
    Update {
        set: PROMOTE_SET,
        filter: PROMOTE_WHERE,
        params: vec![
            (":min_usage", &t.promote_min_usage),
            (":ceiling", &t.promote_ceiling),
        ],
        set_params: vec![(":step", &t.promote_step)],
    }
}

pub(super) fn demote<'a>(t: &'a TuneConfig, th: &'a Thresholds) -> Update<'a> {
    Update {
        set: DEMOTE_SET,
        filter: DEMOTE_WHERE,
        params: vec![
            (":before", &th.demote_before),
            (":max_usage", &t.demote_max_usage),
            (":floor", &t.demote_floor),
        ],
        set_params: vec![(":step", &t.demote_step)],
    }
}

pub(super) fn clear_cache<'a>(t: &'a TuneConfig, th: &'a Thresholds) -> Update<'a> {
    Update {
        set: CLEAR_SET,
        filter: CLEAR_WHERE,
        params: vec![
            (":clear_before", &th.clear_before),
            (":clear_max_usage", &t.clear_max_usage),
        ],
        set_params: vec![],
    }
}

/// The open transaction of a run, with the tables that hold the rows'
/// previous values (none in a dry run).
pub(super) struct Run<'c> {
    pub conn: &'c Connection,
    pub keep_before: bool,
    pub has_embeddings: bool,
}

/// What consolidation did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Consolidated {
    pub removed: u64,
    pub kept_updated: u64,
    pub embeddings_repointed: u64,
    pub embeddings_deleted: u64,
}

pub(super) const BEFORE_PATTERNS: &str = "caretaker_tune_before_patterns";
pub(super) const BEFORE_EMBEDDINGS: &str = "caretaker_tune_before_embeddings";
const DUPS: &str = "temp.caretaker_tune_dups";
const MOVES: &str = "temp.caretaker_tune_moves";

impl Run<'_> {
    /// Creates the table that keeps `table`'s previous values: untyped
    /// columns, so no value is converted on the way.
    pub fn prepare_before(&self, table: &str, before: &str) -> Result<(), ActionError> {
        if !self.keep_before {
            return Ok(());
        }
        let cols: Vec<String> = columns(self.conn, table)?
            .iter()
            .map(|c| quote(c))
            .collect();
        self.conn
            .execute_batch(&format!(
                "DROP TABLE IF EXISTS temp.{before};
                 CREATE TEMP TABLE {before} (caretaker_rowid INTEGER PRIMARY KEY, {});",
                cols.join(", ")
            ))
            .map_err(sql)
    }

    /// Keeps the current values of the rows of `table` that `filter` selects.
    fn keep(
        &self,
        table: &str,
        before: &str,
        filter: &str,
        p: &Params<'_>,
    ) -> Result<(), ActionError> {
        if !self.keep_before {
            return Ok(());
        }
        self.conn
            .execute(
                &format!(
                    "INSERT OR IGNORE INTO temp.{before} SELECT rowid, * FROM main.{} WHERE {filter}",
                    quote(table)
                ),
                p.as_slice(),
            )
            .map(|_| ())
            .map_err(sql)
    }

    /// Runs one statement on the database and returns the rows it changed;
    /// a trigger that changed anything more fails the run (those rows would
    /// not be in the archive).
    fn change(&self, statement: &str, p: &Params<'_>) -> Result<u64, ActionError> {
        let before = self.conn.total_changes();
        let n = self.conn.execute(statement, p.as_slice()).map_err(sql)? as u64;
        if self.conn.total_changes() - before != n {
            return Err(ActionError::Refused(
                "a trigger on patterns or pattern_embeddings changed rows that would not be archived; the run was rolled back".into(),
            ));
        }
        Ok(n)
    }

    /// A score or cache step: keeps the rows' values, then changes them.
    pub fn update(&self, u: &Update<'_>) -> Result<u64, ActionError> {
        self.keep("patterns", BEFORE_PATTERNS, u.filter, &u.params)?;
        let mut all = u.params.clone();
        all.extend(u.set_params.iter().copied());
        self.change(
            &format!("UPDATE main.patterns SET {} WHERE {}", u.set, u.filter),
            &all,
        )
    }

    /// Rows sharing type and pattern_data become one: the one with the
    /// highest confidence (then the lowest rowid) stays and gets the group's
    /// usage counts; if it has no embedding it takes the best-ranked
    /// duplicate's; the duplicates and their other embeddings are removed.
    pub fn consolidate(&self) -> Result<Consolidated, ActionError> {
        let none: Params<'_> = vec![];
        self.conn
            .execute_batch(&format!(
                "DROP TABLE IF EXISTS {DUPS};
                 CREATE TEMP TABLE {} AS
                 SELECT r, id, keeper_id, total, rank FROM (
                   SELECT rowid AS r, id,
                     first_value(id) OVER g AS keeper_id,
                     sum(usage_count) OVER p AS total,
                     count(*) OVER p AS n,
                     row_number() OVER g AS rank
                   FROM main.patterns
                   WHERE id IS NOT NULL AND type IS NOT NULL AND pattern_data IS NOT NULL
                     AND typeof(usage_count) = 'integer'
                   WINDOW p AS (PARTITION BY type COLLATE BINARY, pattern_data COLLATE BINARY),
                          g AS (p ORDER BY typeof(confidence) IN ('integer', 'real') DESC,
                                           confidence DESC, rowid)
                 ) WHERE n > 1;
                 CREATE INDEX temp.caretaker_tune_dups_r ON caretaker_tune_dups (r);
                 CREATE INDEX temp.caretaker_tune_dups_id ON caretaker_tune_dups (id);",
                DUPS.trim_start_matches("temp.")
            ))
            .map_err(sql)?;
        let changed_keeper = format!(
            "rowid IN (SELECT d.r FROM {DUPS} d WHERE d.rank = 1)
             AND usage_count IS NOT (SELECT d.total FROM {DUPS} d WHERE d.r = patterns.rowid)"
        );
        let removed = format!("rowid IN (SELECT r FROM {DUPS} WHERE rank > 1)");
        self.keep(
            "patterns",
            BEFORE_PATTERNS,
            &format!("({removed}) OR ({changed_keeper})"),
            &none,
        )?;
        let mut out = Consolidated::default();
        if self.has_embeddings {
            let of_removed = format!("pattern_id IN (SELECT id FROM {DUPS} WHERE rank > 1)");
            self.keep("pattern_embeddings", BEFORE_EMBEDDINGS, &of_removed, &none)?;
            self.conn
                .execute_batch(&format!(
                    "DROP TABLE IF EXISTS {MOVES};
                     CREATE TEMP TABLE {} AS
                     SELECT er, keeper_id FROM (
                       SELECT e.rowid AS er, d.keeper_id,
                         row_number() OVER (PARTITION BY d.keeper_id ORDER BY d.rank, e.rowid) AS k
                       FROM main.pattern_embeddings e JOIN {DUPS} d ON e.pattern_id = d.id
                       WHERE d.rank > 1 AND NOT EXISTS (
                         SELECT 1 FROM main.pattern_embeddings x WHERE x.pattern_id = d.keeper_id)
                     ) WHERE k = 1;",
                    MOVES.trim_start_matches("temp.")
                ))
                .map_err(sql)?;
            out.embeddings_repointed = self.change(
                &format!(
                    "UPDATE main.pattern_embeddings
                     SET pattern_id = (SELECT m.keeper_id FROM {MOVES} m WHERE m.er = pattern_embeddings.rowid)
                     WHERE rowid IN (SELECT er FROM {MOVES})"
                ),
                &none,
            )?;
            out.embeddings_deleted = self.change(
                &format!("DELETE FROM main.pattern_embeddings WHERE {of_removed}"),
                &none,
            )?;
        }
        out.kept_updated = self.change(
            &format!(
                "UPDATE main.patterns
                 SET usage_count = (SELECT d.total FROM {DUPS} d WHERE d.r = patterns.rowid)
                 WHERE {changed_keeper}"
            ),
            &none,
        )?;
        out.removed = self.change(&format!("DELETE FROM main.patterns WHERE {removed}"), &none)?;
        Ok(out)
    }

    /// The rowids of the embeddings consolidation re-pointed (their key
    /// changed on purpose), for the archive's header.
    pub fn rekeyed_embeddings(&self) -> Result<Vec<i64>, ActionError> {
        let exists: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM temp.sqlite_master WHERE name = 'caretaker_tune_moves')",
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if !exists {
            return Ok(Vec::new());
        }
        self.conn
            .prepare(&format!("SELECT er FROM {MOVES} ORDER BY er"))
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql)
    }

    /// The kept previous values of one table, rowid first, in rowid order.
    pub fn before_rows(&self, before: &str) -> Result<Vec<Vec<ArchiveValue>>, ActionError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT * FROM temp.{before} ORDER BY caretaker_rowid"
            ))
            .map_err(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query([]).map_err(sql)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sql)? {
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                v.push(ArchiveValue::from(row.get_ref(i).map_err(sql)?));
            }
            out.push(v);
        }
        Ok(out)
    }
}

/// `table`'s columns in declaration order.
pub(super) fn columns(conn: &Connection, table: &str) -> Result<Vec<String>, ActionError> {
    conn.prepare("SELECT name FROM pragma_table_info(?1, 'main') ORDER BY cid")
        .and_then(|mut s| s.query_map([table], |r| r.get(0))?.collect())
        .map_err(sql)
}
