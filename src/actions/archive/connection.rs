//! Connections for archive-then-delete sweeps: opening the database for
//! reading or writing with a busy timeout, taking the writer lock, and turning
//! lock waits that ran out into [`ActionError::Busy`]. Kept apart from the
//! batch logic in [`super::sweep`].

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use super::remove_stale_temporaries;
use super::sweep::SweepOptions;
use crate::actions::ActionError;
use crate::config::DatabaseConfig;

/// Turns lock waits that ran out into [`ActionError::Busy`].
pub(crate) fn sql(e: rusqlite::Error) -> ActionError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            ActionError::Busy(format!("the writer lock was not obtained: {e}"))
        }
        _ => ActionError::Sqlite(e),
    }
}

fn open(path: &Path, flags: OpenFlags, busy_timeout: Duration) -> Result<Connection, ActionError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| ActionError::Failed(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(busy_timeout).map_err(sql)?;
    Ok(conn)
}

/// A maintenance connection: read-write, never creating a missing database.
pub(crate) fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, ActionError> {
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE, busy_timeout)?;
    // The bundled SQLite enforces foreign keys by default; a cascade would
    // delete embeddings that were never archived. Every delete is explicit.
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(sql)?;
    Ok(conn)
}

/// Starts a run that deletes: clears what an interrupted run left in the
/// archive folder (unfinished temporaries, whose rows were never deleted) and
/// opens the maintenance connection.
pub(crate) fn start(db: &DatabaseConfig, opts: &SweepOptions) -> Result<Connection, ActionError> {
    let stale = remove_stale_temporaries(&db.archive_dir)?;
    if !stale.is_empty() {
        tracing::warn!(database = %db.name, files = stale.len(), "removed unfinished archives left by an interrupted run");
    }
    open_writer(&db.path, opts.busy_timeout)
}

/// A read-only connection for dry runs, which must not change the file.
pub(crate) fn open_reader(path: &Path, busy_timeout: Duration) -> Result<Connection, ActionError> {
    open(path, OpenFlags::SQLITE_OPEN_READ_ONLY, busy_timeout)
}

/// Whether `table` exists in the database.
pub(crate) fn has_table(conn: &Connection, table: &str) -> Result<bool, ActionError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [table],
        |r| r.get(0),
    )
    .map_err(sql)
}

/// Takes the writer lock, waiting up to `wait`.
///
/// SQLite's own busy handler backs off to 100 ms sleeps, so an application
/// that writes back to back wins the lock nearly every time and the sweep
/// gives up as busy. Trying every millisecond finds the gaps between the
/// application's transactions.
pub(crate) fn begin_immediate(
    conn: &Connection,
    wait: Duration,
) -> Result<Transaction<'_>, ActionError> {
    let give_up = Instant::now() + wait;
    conn.busy_timeout(Duration::from_millis(1)).map_err(sql)?;
    let tx = loop {
        match Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(sql) {
            Err(ActionError::Busy(_)) if Instant::now() < give_up => {
                std::thread::sleep(Duration::from_millis(1));
            }
            other => break other,
        }
    };
    // Statements inside the transaction (a commit waiting for readers in
    // rollback-journal mode) wait the usual way.
    conn.busy_timeout(wait).map_err(sql)?;
    tx
}
