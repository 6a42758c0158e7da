//! Opening the state database's connection: why each PRAGMA is set, the
//! schema and the columns added since the first release, and the jobs a
//! stopped process left running.

use std::path::Path;

use rusqlite::{params, Connection};

use super::files;
use crate::responder::job::JobStatus;

const SCHEMA: &str = include_str!("state_schema.sql");

/// Opens the connection, sets it up and marks interrupted jobs; see
/// [`files::retry_while_busy`] for why it may be called again.
pub(super) fn connection(path: &Path, now: f64) -> rusqlite::Result<(Connection, usize)> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(files::BUSY_TIMEOUT)?;
    // WAL with FULL sync: a job acknowledged with 202 is on disk.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    // Columns added after the first release: state databases created
    // before them gain them here.
    add_column(&conn, "jobs", "credential", "TEXT")?;
    add_column(&conn, "audit", "credential", "TEXT")?;
    add_column(&conn, "jobs", "ignore_window", "INTEGER NOT NULL DEFAULT 0")?;
    // A job left `running` by a process that no longer exists was interrupted;
    // one whose process still runs (a `caretaker run` beside the daemon) is not.
    let running: Vec<(i64, Option<u32>)> = conn
        .prepare("SELECT id, pid FROM jobs WHERE status = ?1")?
        .query_map([JobStatus::Running], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut interrupted = 0;
    for (id, pid) in running {
        let alive = pid
            .is_some_and(|p| p != std::process::id() && Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            interrupted += conn.execute(
                "UPDATE jobs SET status = ?3, finished_at = ?2,
                   error = 'caretaker stopped while the job was running' WHERE id = ?1 AND status = ?4",
                params![id, now, JobStatus::Interrupted, JobStatus::Running],
            )?;
        }
    }
    Ok((conn, interrupted))
}

/// Adds `column` with `definition` unless the table has it.
fn add_column(
    conn: &Connection,
    table: &str,
    column: &str,
    definition: &str,
) -> rusqlite::Result<()> {
    let present: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        params![table, column],
        |r| r.get(0),
    )?;
    if present {
        return Ok(());
    }
    // Another process opening the same state database may add it between
    // the check and the ALTER: its column is as good as ours.
    match conn.execute_batch(&format!(
        "ALTER TABLE {table} ADD COLUMN {column} {definition}"
    )) {
        Err(rusqlite::Error::SqliteFailure(_, Some(m)))
            if m.starts_with("duplicate column name") =>
        {
            Ok(())
        }
        other => other,
    }
}
