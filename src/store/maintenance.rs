//! The connection maintenance actions write through.
//!
//! Read-write but never create: a missing database is an error, not a new
//! empty file. The busy timeout bounds how long an action waits for the
//! application's writers; the progress handler enforces the action deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

/// How long a mutating action waits for the application's write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens `path` for maintenance.
pub fn open_maintenance(path: &Path, deadline: Instant) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.progress_handler(10_000, Some(move || Instant::now() >= deadline))?;
    Ok(conn)
}
