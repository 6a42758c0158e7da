//! The archive-then-delete transaction that prune and purge share.
//!
//! One batch is one write transaction. `BEGIN IMMEDIATE` takes the writer lock
//! before anything is selected, so the rows picked cannot change before the
//! commit. The picked rows are written to archives (durably, see the parent
//! module), then exactly those rows are deleted by rowid and the changes are
//! counted: a trigger or foreign-key cascade that deleted anything else rolls
//! the batch back. Only then does the transaction commit. A crash before the
//! commit leaves the rows in the database and in an archive; restoring that
//! archive later is harmless because restore skips rows that are present.
//!
//! Batches are small so the application waits at most one batch for its own
//! writes, and the deadline is checked between batches: what committed stays
//! committed, and the next run carries on where this one stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Params, Transaction};

use super::restore::quote;
use super::{write_archive, ArchiveError, ArchiveHeader, ArchiveValue, Utc};
use crate::actions::ActionError;

/// How a sweep runs; the defaults are what the actions use. Plain fields so
/// tests can shorten the wait or inject a failure.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// How long to wait for the application's writer lock before giving up
    /// with [`ActionError::Busy`].
    pub busy_timeout: Duration,
    /// Rows of the main table per transaction (each batch also takes the
    /// embeddings of its patterns).
    pub batch_rows: usize,
    /// Test seam: fail after the archives are in place and the rows deleted,
    /// just before the commit, as a crash there would.
    pub fail_before_commit: bool,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            batch_rows: 5_000,
            fail_before_commit: false,
        }
    }
}

impl From<ArchiveError> for ActionError {
    fn from(e: ArchiveError) -> Self {
        ActionError::Failed(e.to_string())
    }
}

pub(crate) use super::connection::{
    begin_immediate, has_table, open_reader, open_writer, sql, start,
};

/// Where a run's archives go and how they are labelled.
pub(crate) struct Destination<'a> {
    pub dir: &'a Path,
    pub database: &'a str,
    pub at: Utc,
}

/// The rows of one table a batch will archive and delete.
struct Pick {
    table: &'static str,
    reason: &'static str,
    columns: Vec<String>,
    rowids: Vec<i64>,
    rows: Vec<Vec<ArchiveValue>>,
}

/// One write transaction: rows are picked, then archived and deleted together.
pub(crate) struct Batch<'c> {
    tx: Transaction<'c>,
    picks: Vec<Pick>,
}

impl<'c> Batch<'c> {
    fn begin(conn: &'c mut Connection, wait: Duration) -> Result<Self, ActionError> {
        Ok(Self {
            tx: begin_immediate(conn, wait)?,
            picks: Vec::new(),
        })
    }

    /// Picks the rows of `table` that `filter` (the SQL after `FROM table`)
    /// selects, to be archived with `reason`; returns how many.
    pub fn pick<P: Params>(
        &mut self,
        table: &'static str,
        reason: &'static str,
        filter: &str,
        params: P,
    ) -> Result<usize, ActionError> {
        let columns: Vec<String> = self
            .tx
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .and_then(|mut s| s.query_map([table], |r| r.get(0))?.collect())
            .map_err(sql)?;
        let list: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        let select = format!(
            "SELECT rowid, {} FROM {} {filter}",
            list.join(", "),
            quote(table)
        );
        let mut stmt = self.tx.prepare(&select).map_err(sql)?;
        let mut rows = stmt.query(params).map_err(sql)?;
        let (mut rowids, mut values) = (Vec::new(), Vec::new());
        while let Some(row) = rows.next().map_err(sql)? {
            rowids.push(row.get::<_, i64>(0).map_err(sql)?);
            let mut v = Vec::with_capacity(columns.len());
            for i in 1..=columns.len() {
                v.push(ArchiveValue::from(row.get_ref(i).map_err(sql)?));
            }
            values.push(v);
        }
        let n = rowids.len();
        self.picks.push(Pick {
            table,
            reason,
            columns,
            rowids,
            rows: values,
        });
        Ok(n)
    }

    pub fn has_table(&self, table: &str) -> Result<bool, ActionError> {
        has_table(&self.tx, table)
    }

    /// The rowids picked so far from `table`, as a JSON array for `json_each`.
    pub fn rowids_json(&self, table: &str) -> String {
        let ids: Vec<String> = self
            .picks
            .iter()
            .filter(|p| p.table == table)
            .flat_map(|p| p.rowids.iter().map(i64::to_string))
            .collect();
        format!("[{}]", ids.join(","))
    }

    /// Archives every pick, deletes exactly those rows, and commits.
    fn commit(
        self,
        dest: &Destination<'_>,
        opts: &SweepOptions,
        report: &mut SweepReport,
    ) -> Result<(), ActionError> {
        let mut archives = Vec::new();
        for p in self.picks.iter().filter(|p| !p.rows.is_empty()) {
            let header =
                ArchiveHeader::new(dest.database, p.table, p.columns.clone(), dest.at, p.reason);
            archives.push(write_archive(dest.dir, &header, &p.rows)?);
        }
        let kept = || {
            let names: Vec<String> = archives
                .iter()
                .map(|a| a.path.display().to_string())
                .collect();
            format!(
                "rolled back: the rows stay in the database and in {}",
                names.join(", ")
            )
        };
        let before = self.tx.total_changes();
        let mut deleted = 0;
        for p in &self.picks {
            let ids: Vec<String> = p.rowids.iter().map(i64::to_string).collect();
            let n = self
                .tx
                .execute(
                    &format!(
                        "DELETE FROM {} WHERE rowid IN (SELECT value FROM json_each(?1))",
                        quote(p.table)
                    ),
                    [format!("[{}]", ids.join(","))],
                )
                .map_err(sql)?;
            if n != p.rowids.len() {
                let want = p.rowids.len();
                return Err(ActionError::Failed(format!(
                    "{}: deleted {n} rows, archived {want}; {}",
                    p.table,
                    kept()
                )));
            }
            deleted += n as u64;
        }
        if self.tx.total_changes() - before != deleted {
            return Err(ActionError::Failed(format!(
                "a trigger or cascade changed rows that were not archived; {}",
                kept()
            )));
        }
        if opts.fail_before_commit {
            return Err(ActionError::Failed(format!(
                "injected failure before commit; {}",
                kept()
            )));
        }
        self.tx.commit().map_err(sql)?;
        for p in &self.picks {
            *report.rows.entry(p.table).or_default() += p.rowids.len() as u64;
        }
        report.bytes += archives.iter().map(|a| a.bytes).sum::<u64>();
        report.archives.extend(archives.into_iter().map(|a| a.path));
        report.batches += 1;
        Ok(())
    }
}

/// What the sweeps of one action run have committed.
#[derive(Debug, Default)]
pub(crate) struct SweepReport {
    /// Rows archived and deleted, per table.
    pub rows: BTreeMap<&'static str, u64>,
    /// Compressed bytes of the archives written.
    pub bytes: u64,
    pub archives: Vec<PathBuf>,
    pub batches: u64,
    /// The deadline passed before the work was done.
    pub stopped_at_deadline: bool,
}

impl SweepReport {
    pub fn of(&self, table: &str) -> u64 {
        self.rows.get(table).copied().unwrap_or(0)
    }

    pub fn rows_deleted(&self) -> u64 {
        self.rows.values().sum()
    }

    /// How a run's summary ends: a note when the deadline cut it short, and an
    /// error when it stopped before committing anything.
    pub fn ending(&self) -> Result<&'static str, ActionError> {
        match (self.stopped_at_deadline, self.batches) {
            (false, _) => Ok(""),
            (true, 0) => Err(ActionError::Deadline(
                "the deadline passed before the first batch; nothing was changed".into(),
            )),
            (true, _) => Ok(" (stopped at the deadline; the next run continues)"),
        }
    }

    /// Adds what already committed to an error's message: those rows are gone
    /// from the database (and in their archives) whatever happens next.
    fn annotate(&self, e: ActionError) -> ActionError {
        if self.batches == 0 {
            return e;
        }
        let done = format!(
            "{} rows in {} batches were archived and deleted before this",
            self.rows_deleted(),
            self.batches
        );
        match e {
            ActionError::Busy(m) => ActionError::Busy(format!("{m}; {done}")),
            ActionError::Failed(m) => ActionError::Failed(format!("{m}; {done}")),
            ActionError::Sqlite(s) => ActionError::Failed(format!("sqlite: {s}; {done}")),
            other => other,
        }
    }
}

/// The part of a table one batch looks at: rows after the last one the
/// previous batch took, in rowid order, so a run reads each table once instead
/// of rescanning it per batch. Rows that become candidates behind the cursor
/// while the lock is released are left for the next run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub after: i64,
    pub limit: i64,
}

/// The end of a pick's filter that applies the [`Window`]; bind `:after` and
/// `:limit`.
pub(crate) const WINDOW: &str = "AND rowid > :after ORDER BY rowid LIMIT :limit";

/// Runs batches until `pick` fills less than a batch or the deadline passes.
/// `pick` gets the batch and its window, and returns how many rows of the
/// main table (its first pick) it took.
pub(crate) fn sweep(
    conn: &mut Connection,
    deadline: Instant,
    dest: &Destination<'_>,
    opts: &SweepOptions,
    report: &mut SweepReport,
    pick: impl Fn(&mut Batch<'_>, Window) -> Result<usize, ActionError>,
) -> Result<(), ActionError> {
    let limit = opts.batch_rows.clamp(1, i64::MAX as usize);
    let mut window = Window {
        after: i64::MIN,
        limit: limit as i64,
    };
    loop {
        if Instant::now() >= deadline {
            report.stopped_at_deadline = true;
            return Ok(());
        }
        let mut batch = Batch::begin(conn, opts.busy_timeout).map_err(|e| report.annotate(e))?;
        let n = pick(&mut batch, window).map_err(|e| report.annotate(e))?;
        let last = batch
            .picks
            .first()
            .and_then(|p| p.rowids.iter().max().copied());
        let Some(last) = last.filter(|_| n > 0) else {
            return Ok(()); // dropping the batch ends its empty transaction
        };
        batch
            .commit(dest, opts, report)
            .map_err(|e| report.annotate(e))?;
        if n < limit {
            return Ok(());
        }
        window.after = last;
    }
}
