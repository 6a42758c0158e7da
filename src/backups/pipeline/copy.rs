//! The raw copy: one read transaction on the source pins the snapshot that
//! becomes the backup, and its pages are copied as they are.
//!
//! `VACUUM INTO` rebuilt every B-tree (CPU bound, about as slow as the
//! check); copying pages does not. A stepped backup API copy restarts when
//! another connection writes to the source, but only because each step opens
//! a fresh read transaction: holding ONE read transaction for the whole copy
//! pins the snapshot, so nothing restarts and (in WAL mode) writers carry on.
//!
//! Two ways to copy the pinned pages:
//! - [`Pinned::copy_pages`] reads them through the `sqlite_dbpage` table (the
//!   bundled SQLite is built with it, see `.cargo/config.toml`) and writes
//!   them to the copy a MiB at a time, reporting its progress, so the
//!   compressor can follow the copy instead of waiting for it;
//! - [`Pinned::copy_with_backup_api`] is the fallback for an SQLite without
//!   that table: the backup API writes the copy, which is compressed after.
//!
//! Either way the copy is marked rollback-mode, so it never needs `-wal`.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::StepResult;
use rusqlite::{Connection, OpenFlags};

use super::{available_bytes, io_failure, no_room};
use crate::backups::BackupError;
use crate::store::sqlite::{map_for_full_pass, open_monitor};

/// Pages per backup API step: 16,384 pages of 4 KiB is 64 MiB, well under a
/// second, so the deadline is checked often.
const PAGES_PER_STEP: std::os::raw::c_int = 16_384;

/// Bytes written at a time by [`Pinned::copy_pages`].
pub(super) const PIECE_BYTES: usize = 1 << 20;

/// A read transaction on the source and the size of the snapshot it pins.
pub(super) struct Pinned {
    conn: Connection,
    pages: i64,
    page_size: i64,
    /// Whether this SQLite has the `sqlite_dbpage` table.
    pub(super) pages_readable: bool,
}

/// Opens `source` read-only and pins its current snapshot; refuses when
/// `dir` cannot hold the copy.
pub(super) fn pin(source: &Path, dir: &Path, deadline: Instant) -> Result<Pinned, BackupError> {
    let conn = open_monitor(source, deadline)?;
    map_for_full_pass(&conn)?;
    // The SELECT starts the read transaction (BEGIN alone takes no snapshot).
    conn.execute_batch("BEGIN")?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
    // Free pages are copied too: the copy is as large as the file.
    let (pages, page_size): (i64, i64) = conn.query_row(
        "SELECT (SELECT page_count FROM pragma_page_count), \
                (SELECT page_size FROM pragma_page_size)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let needed = u64::try_from(pages.saturating_mul(page_size)).unwrap_or(0);
    let avail = available_bytes(dir)?;
    if avail < needed {
        return Err(BackupError::Refused(format!(
            "no room in {}: the copy needs about {needed} bytes, {avail} are available",
            dir.display()
        )));
    }
    let pages_readable = conn.prepare("SELECT data FROM sqlite_dbpage").is_ok();
    Ok(Pinned {
        conn,
        pages,
        page_size,
        pages_readable,
    })
}

impl Pinned {
    /// Size of the copy: every page of the snapshot, free ones included.
    pub(super) fn bytes(&self) -> i64 {
        self.pages.saturating_mul(self.page_size)
    }

    /// Writes every page of the snapshot to `out` (a new, empty file), a
    /// MiB at a time, calling `progress` with the bytes written so far after
    /// each write; an error from `progress` stops the copy.
    pub(super) fn copy_pages(
        self,
        mut out: std::fs::File,
        dir: &Path,
        deadline: Instant,
        mut progress: impl FnMut(u64) -> std::io::Result<()>,
    ) -> Result<(), BackupError> {
        let page_size = usize::try_from(self.page_size).unwrap_or(0);
        let failed = |e: std::io::Error| io_failure(e, dir, "copying");
        let mut piece = Vec::with_capacity(PIECE_BYTES);
        let mut copied = 0i64;
        let mut written = 0u64;
        let mut flush = |piece: &mut Vec<u8>| -> Result<(), BackupError> {
            out.write_all(piece).map_err(failed)?;
            written += piece.len() as u64;
            piece.clear();
            progress(written).map_err(failed)
        };
        {
            let mut stmt = self.conn.prepare("SELECT data FROM sqlite_dbpage")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let page = row.get_ref(0)?.as_blob().map_err(|e| {
                    BackupError::Failed(format!("page {} is not a blob: {e}", copied + 1))
                })?;
                if page.len() != page_size {
                    return Err(BackupError::Failed(format!(
                        "page {} has {} bytes, expected {page_size}",
                        copied + 1,
                        page.len()
                    )));
                }
                let at = piece.len();
                piece.extend_from_slice(page);
                if copied == 0 {
                    mark_rollback_mode(&mut piece[at..]);
                }
                copied += 1;
                if piece.len() + page_size > PIECE_BYTES {
                    if Instant::now() >= deadline {
                        return Err(late());
                    }
                    flush(&mut piece)?;
                }
            }
        }
        if !piece.is_empty() {
            flush(&mut piece)?;
        }
        if copied != self.pages {
            return Err(BackupError::Failed(format!(
                "copied {copied} pages of a {}-page snapshot",
                self.pages
            )));
        }
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// Copies the snapshot into the new file `raw` with the backup API.
    pub(super) fn copy_with_backup_api(
        self,
        raw: &Path,
        dir: &Path,
        deadline: Instant,
    ) -> Result<(), BackupError> {
        // Created here, so it is private (SQLite would follow the umask).
        drop(crate::store::private::create_new(raw)?);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut dst = Connection::open_with_flags(raw, flags)?;
        // A private file that is deleted on any failure needs no journal and
        // no fsync: the compressed file is what gets synced.
        dst.pragma_update(None, "journal_mode", "OFF")?;
        dst.pragma_update(None, "synchronous", "OFF")?;
        let sqlite_err = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => no_room(dir, "copying"),
            _ => BackupError::Sqlite(e),
        };
        {
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut dst).map_err(sqlite_err)?;
            loop {
                if Instant::now() >= deadline {
                    return Err(late());
                }
                match backup.step(PAGES_PER_STEP).map_err(sqlite_err)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    // Only the WAL index being reset can make a pinned
                    // reader wait; try again shortly.
                    StepResult::Busy | StepResult::Locked => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    _ => {}
                }
            }
        }
        self.conn.execute_batch("COMMIT")?;
        drop(self.conn);
        dst.close().map_err(|(_, e)| sqlite_err(e))?;
        // See `mark_rollback_mode`.
        let mut f = std::fs::File::options().write(true).open(raw)?;
        f.seek(SeekFrom::Start(18))?;
        f.write_all(&[1, 1])?;
        Ok(())
    }
}

fn late() -> BackupError {
    BackupError::Deadline("the copy did not finish in time".into())
}

/// The copied header still says "WAL" (bytes 18 and 19 of page 1 are 2);
/// the copy's pages are complete without a `-wal` file, so setting them to
/// 1 makes an ordinary rollback-journal database that opens, verifies and
/// restores without `-wal` or `-shm` files.
fn mark_rollback_mode(page_one: &mut [u8]) {
    page_one[18] = 1;
    page_one[19] = 1;
}
