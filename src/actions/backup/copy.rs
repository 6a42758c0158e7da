//! The raw copy: SQLite's online backup API inside one read transaction.
//!
//! `VACUUM INTO` rebuilt every B-tree (CPU bound, about as slow as the
//! check); the backup API copies pages as they are. A stepped backup restarts
//! when another connection writes to the source, but only because each step
//! opens a fresh read transaction: holding ONE read transaction on the source
//! for the whole copy pins the snapshot, so the steps never restart and (in
//! WAL mode) writers carry on. Steps are bounded so the deadline is checked
//! between them.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::StepResult;
use rusqlite::{Connection, OpenFlags};

use super::{available_bytes, no_room};
use crate::actions::ActionError;
use crate::collector::sqlite::{map_for_full_pass, open_monitor};

/// Pages per step: 16,384 pages of 4 KiB is 64 MiB, well under a second.
const PAGES_PER_STEP: std::os::raw::c_int = 16_384;

/// Copies `source` page by page into the new file `raw`, a self-contained
/// rollback-mode database; refuses when the folder cannot hold the copy.
pub(super) fn copy_database(
    source: &Path,
    raw: &Path,
    dir: &Path,
    deadline: Instant,
) -> Result<(), ActionError> {
    let conn = open_monitor(source, deadline)?;
    map_for_full_pass(&conn)?;
    // One read transaction for the whole copy: the snapshot it pins is the
    // backup. The SELECT starts it (BEGIN alone takes no snapshot).
    conn.execute_batch("BEGIN")?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
    // The backup API copies free pages too: the copy is as large as the file.
    let (pages, page_size): (i64, i64) = conn.query_row(
        "SELECT (SELECT page_count FROM pragma_page_count), \
                (SELECT page_size FROM pragma_page_size)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let needed = u64::try_from(pages.saturating_mul(page_size)).unwrap_or(0);
    let avail = available_bytes(dir)?;
    if avail < needed {
        return Err(ActionError::Refused(format!(
            "no room in {}: the copy needs about {needed} bytes, {avail} are available",
            dir.display()
        )));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut dst = Connection::open_with_flags(raw, flags)?;
    // A private file that is deleted on any failure needs no journal and no
    // fsync: the compressed file is what gets synced.
    dst.pragma_update(None, "journal_mode", "OFF")?;
    dst.pragma_update(None, "synchronous", "OFF")?;
    let sqlite_err = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => no_room(dir, "copying"),
        _ => ActionError::Sqlite(e),
    };
    {
        let backup = rusqlite::backup::Backup::new(&conn, &mut dst).map_err(sqlite_err)?;
        loop {
            if Instant::now() >= deadline {
                return Err(ActionError::Deadline(
                    "the copy did not finish in time".into(),
                ));
            }
            match backup.step(PAGES_PER_STEP).map_err(sqlite_err)? {
                StepResult::Done => break,
                StepResult::More => {}
                // Only the WAL index being reset can make a pinned reader
                // wait; try again shortly.
                StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {}
            }
        }
    }
    conn.execute_batch("COMMIT")?;
    drop(conn);
    dst.close().map_err(|(_, e)| sqlite_err(e))?;
    mark_rollback_mode(raw)?;
    Ok(())
}

/// The copied header still says "WAL" (bytes 18 and 19 are 2); with no `-wal`
/// file the pages are complete, so setting them to 1 makes an ordinary
/// rollback-journal database that opens, verifies and restores without
/// `-wal` or `-shm` files.
fn mark_rollback_mode(raw: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::options().write(true).open(raw)?;
    f.seek(SeekFrom::Start(18))?;
    f.write_all(&[1, 1])
}
