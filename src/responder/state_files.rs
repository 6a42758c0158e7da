//! Opening the state database: a private file, and patience with other
//! processes opening it at the same moment.
//!
//! The state database holds alert labels and action outcomes: it is created
//! 0600 (and an older one is tightened) before SQLite opens it, so its
//! `-wal` and `-shm` files, which SQLite creates with the database's mode,
//! are private too; a missing folder is created 0700. Several processes
//! (`caretaker run` beside the daemon, or three at once) may open a new
//! state database together: some of SQLite's first steps (switching to WAL,
//! creating the schema) can answer "database is locked" without calling the
//! busy handler, so the whole opening is retried until the busy timeout.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;

use crate::store::private;

/// How long opening waits for other processes, as every statement does.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the state database's folder (0700) and file (0600) if missing,
/// and makes an existing file and its `-wal`/`-shm` private.
pub(super) fn prepare(path: &Path) -> rusqlite::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        private::create_dir_all(parent).map_err(|e| io_error(path, e))?;
    }
    let file = private::open_or_create(path).map_err(|e| io_error(path, e))?;
    private::restrict(&file).map_err(|e| io_error(path, e))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let opened = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&side);
        if let Ok(f) = opened {
            private::restrict(&f).map_err(|e| io_error(path, e))?;
        }
    }
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
        Some(format!("{}: {e}", path.display())),
    )
}

/// Runs `open` again while it fails with "database is locked", until the
/// busy timeout has passed.
pub(super) fn retry_while_busy<T>(
    mut open: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let until = Instant::now() + BUSY_TIMEOUT;
    loop {
        match open() {
            Err(e) if is_busy(&e) && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
