//! Monitoring connections to an application database.
//!
//! caretaker must never disturb the application: connections are read-only
//! and never create a missing file, read transactions are short (WAL readers
//! do not block writers), and a progress handler aborts any statement that
//! runs past the collection's deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

/// Opens `path` read-only for monitoring.
pub fn open_monitor(path: &Path, deadline: Instant) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    // A reader only waits for a lock while a writer resets the WAL index; keep
    // that short so a busy database is reported rather than waited on.
    conn.busy_timeout(Duration::from_millis(500))?;
    // Memory-mapped reads make full passes over large tables about 3x faster.
    conn.pragma_update(None, "mmap_size", 256i64 * 1024 * 1024)?;
    conn.progress_handler(10_000, Some(move || Instant::now() >= deadline))?;
    Ok(conn)
}

/// How much of a file a connection that reads all of it (a backup's copy,
/// an integrity check) maps into memory; SQLite caps it at 2 GiB and reads
/// the rest with `pread`. The checks follow index entries back to their rows,
/// so without the map every visit is a system call: `integrity_check` of a
/// 1.3 GB database spends 6 s of its 14 in the kernel that way, and 0.05 s of
/// 8.5 with it. The mapped pages are the page cache's, shared and reclaimable.
pub const FULL_PASS_MMAP_BYTES: i64 = 2 * 1024 * 1024 * 1024;

/// Maps up to [`FULL_PASS_MMAP_BYTES`] of the file behind `conn`.
pub fn map_for_full_pass(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "mmap_size", FULL_PASS_MMAP_BYTES)
}

/// The tables of the seed schema that exist in this database.
pub fn existing_tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    names.collect()
}

/// The seven tables of the seed schema, the only ones whose rows are counted.
pub const SEED_TABLES: [&str; 7] = [
    "patterns",
    "pattern_embeddings",
    "task_trajectories",
    "verification_history",
    "memory_entries",
    "metrics_log",
    "migrations_applied",
];

/// SQLite's text form of "now minus `ago`", as the seeds' `datetime('now', ...)`
/// computes it; bound as a parameter so no row pays for a date computation.
pub fn datetime_ago(conn: &Connection, ago: Duration) -> rusqlite::Result<String> {
    let modifier = format!("-{} seconds", ago.as_secs());
    conn.query_row("SELECT datetime('now', ?1)", [modifier], |r| r.get(0))
}

/// Why a statement may not run as a probe on a monitoring connection.
#[derive(Debug, thiserror::Error)]
pub enum StatementRefused {
    #[error("{0}")]
    Sql(#[from] rusqlite::Error),
    /// SQLite says the statement would write (`sqlite3_stmt_readonly`).
    #[error("the statement would write to the database; only read-only statements run as probes")]
    Writes,
    /// `BEGIN`, `ATTACH`, a setting `PRAGMA`: read-only in SQLite's sense, but
    /// they change the connection and return nothing to measure.
    #[error("the statement returns no columns; a probe is a query (SELECT, WITH, VALUES)")]
    NoColumns,
    #[error("the statement is an EXPLAIN; caretaker explains each probe itself")]
    Explain,
}

/// Prepares `sql` for a probe: one statement that SQLite itself calls
/// read-only ([`rusqlite::Statement::readonly`]) and that returns columns.
/// The connection being read-only already refuses writes when they run;
/// this refuses them before anything runs, at `check-config` and reload.
pub fn prepare_read_only<'c>(
    conn: &'c Connection,
    sql: &str,
) -> Result<rusqlite::Statement<'c>, StatementRefused> {
    let stmt = conn.prepare(sql)?;
    if !stmt.readonly() {
        return Err(StatementRefused::Writes);
    }
    if stmt.is_explain() != 0 {
        return Err(StatementRefused::Explain);
    }
    if stmt.column_count() == 0 {
        return Err(StatementRefused::NoColumns);
    }
    Ok(stmt)
}

/// Whether the plan of `sql` reads a whole table without an index (the
/// seed's missing-index check, `SCAN <table>` in `EXPLAIN QUERY PLAN`).
///
/// Read from the bytecode (`EXPLAIN`) rather than the query plan's text: the
/// plan names a scanned table by its alias, which cannot be told from a
/// common table expression's (`SCAN a` may be either). In the bytecode a full
/// scan is a cursor opened on a table's root page (`OpenRead`) and moved to
/// its first or last row (`Rewind`, `Last`); a lookup seeks instead, a scan
/// of an index opens the index's root page, and CTEs and subqueries live in
/// ephemeral tables that `OpenRead` never opens.
pub fn scans_without_index(conn: &Connection, sql: &str) -> rusqlite::Result<bool> {
    let mut tables = conn.prepare_cached(
        "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND rootpage > 0",
    )?;
    let roots = tables
        .query_map([], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}"))?;
    let ops = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let table_cursors: Vec<i64> = ops
        .iter()
        .filter(|(op, _, root)| op == "OpenRead" && roots.contains(root))
        .map(|(_, cursor, _)| *cursor)
        .collect();
    Ok(ops.iter().any(|(op, cursor, _)| {
        matches!(op.as_str(), "Rewind" | "Last") && table_cursors.contains(cursor)
    }))
}

/// Interrupts the statements of one connection once `timeout` has passed,
/// through [`rusqlite::InterruptHandle`] from a thread of its own, unless
/// dropped first. SQLite checks for the interrupt between steps of the
/// virtual machine, so even a statement that returns no row for a long time
/// (a recursive CTE, a sort of every row) stops within milliseconds; an
/// interrupt that comes when nothing runs does nothing.
pub struct InterruptAfter {
    /// Dropped with the guard, which wakes the thread with `Disconnected`.
    _done: std::sync::mpsc::Sender<()>,
}

impl InterruptAfter {
    pub fn start(conn: &Connection, timeout: Duration) -> std::io::Result<Self> {
        let handle = conn.get_interrupt_handle();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("caretaker-probe-timeout".into())
            .spawn(move || {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout)
                {
                    handle.interrupt();
                }
            })?;
        Ok(Self { _done: done })
    }
}

/// Whether `e` is SQLite's answer to an interrupt (a timeout or a deadline).
pub fn is_interrupt(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}
