//! The order of a backup's work, and what overlaps.
//!
//! The copy is single-threaded and the compressor uses every core, so on
//! the copy's own the other cores would wait. With `sqlite_dbpage` the copy
//! is written in order, page 1 first, so the compressor reads each MiB of
//! the file as soon as it is written (the copy never waits for it), and the
//! check of the copy starts as soon as the copy is whole, while the
//! compressor catches up. Without it the backup API writes page 1 last, so
//! the copy comes first and the check runs alongside the compression.

use std::io::Read;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::compress::Compressor;
use super::copy::{Pinned, PIECE_BYTES};
use super::{io_failure, Phases};
use crate::backups::verify::check_database_file;
use crate::backups::BackupError;
use crate::config::BackupConfig;
use crate::progress::Reporter;
use crate::store::private;

/// The temporary files of one backup.
pub(super) struct Files<'a> {
    /// The uncompressed copy, which the check opens.
    pub raw: &'a Path,
    /// The compressed file being written.
    pub packed: &'a Path,
    /// The backup folder, for error messages.
    pub dir: &'a Path,
    /// The database's name, for progress lines.
    pub database: &'a str,
    /// Where the stages are shown (`caretaker run backup`).
    pub shown: &'a Reporter,
}

/// Why a backup stopped.
#[derive(Debug)]
pub(super) enum Failure {
    /// The copy was made but does not pass its check.
    Check(String),
    Other(BackupError),
}

impl From<BackupError> for Failure {
    fn from(e: BackupError) -> Failure {
        Failure::Other(e)
    }
}

/// Copies the pinned snapshot while the compressor follows the copy in
/// the file, and checks the copy as soon as it is whole, while the
/// compressor finishes. Returns (size, SHA-256) of the compressed file.
pub(super) fn copy_while_compressing(
    pinned: Pinned,
    files: &Files<'_>,
    cfg: &BackupConfig,
    deadline: Instant,
    phases: &mut Phases,
) -> Result<(u64, String), Failure> {
    let opened =
        private::create_new(files.raw).and_then(|out| Ok((out, std::fs::File::open(files.raw)?)));
    let (out, input) = opened.map_err(|e| io_failure(e, files.dir, "copying"))?;
    let progress = Progress::new(Copy::Growing(0));
    let total = u64::try_from(pinned.bytes()).unwrap_or(0);
    let started = Instant::now();
    let (copied, checked, compressed) = std::thread::scope(|s| {
        let progress = &progress;
        let compressor = s.spawn(move || {
            let result = follow(input, files.packed, cfg, deadline, progress);
            if result.is_err() {
                progress.set(Copy::Stopped);
            }
            result
        });
        let mut shown = files.shown.stage(&copying(files), Some(total));
        let copied = pinned.copy_pages(out, files.dir, deadline, |bytes| {
            shown.set(bytes);
            progress.advance(bytes)
        });
        drop(shown);
        phases.copy = started.elapsed().as_secs_f64();
        progress.set(if copied.is_ok() {
            Copy::Whole
        } else {
            Copy::Stopped
        });
        let checked = copied.is_ok().then(|| {
            let _shown = files.shown.stage("checking the copy", None);
            check(files.raw, cfg, deadline)
        });
        let compressed = compressor
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the compressor panicked")));
        (copied, checked, compressed)
    });
    phases.compress = started.elapsed().as_secs_f64();
    // A compressor that failed (a full disk, say) stops the copy too: its
    // error is the cause, the copy's is only the consequence.
    let compressed = compressed.map_err(|e| io_failure(e, files.dir, "compressing"))?;
    copied?;
    if let Some((result, seconds)) = checked {
        phases.check = seconds;
        result.map_err(Failure::Check)?;
    }
    compressed.ok_or_else(|| BackupError::Failed("the compressor stopped early".into()).into())
}

/// Checks the finished copy; returns the result and the seconds it took.
fn check(raw: &Path, cfg: &BackupConfig, deadline: Instant) -> (Result<(), String>, f64) {
    let t = Instant::now();
    let result = check_database_file(raw, cfg.verify, deadline);
    (result, t.elapsed().as_secs_f64())
}

/// Compresses the copy in `input` as it grows (all of it at once if it is
/// already whole); `None` if the copy stopped.
fn follow(
    mut input: std::fs::File,
    packed: &Path,
    cfg: &BackupConfig,
    deadline: Instant,
    progress: &Progress,
) -> std::io::Result<Option<(u64, String)>> {
    let mut compressor = Compressor::create(packed, cfg, deadline)?;
    let mut buf = vec![0u8; PIECE_BYTES];
    let mut done = 0u64;
    loop {
        let (ready, whole) = match progress.wait_beyond(done) {
            Copy::Growing(ready) => (ready, false),
            Copy::Whole => (u64::MAX, true),
            Copy::Stopped => return Ok(None),
        };
        while done < ready {
            let want = usize::try_from(ready - done).map_or(PIECE_BYTES, |n| n.min(PIECE_BYTES));
            let n = input.read(&mut buf[..want])?;
            if n == 0 && whole {
                break;
            }
            if n == 0 {
                return Err(std::io::Error::other("the copy is shorter than written"));
            }
            compressor.write(&buf[..n])?;
            done += n as u64;
        }
        if whole {
            return compressor.finish().map(Some);
        }
    }
}

/// How far the copy has got.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Copy {
    /// This many bytes of the copy are in the file.
    Growing(u64),
    /// The copy is complete.
    Whole,
    /// The copy or the compressor failed.
    Stopped,
}

/// The copy's progress, shared between the copy and the compressor.
struct Progress {
    state: Mutex<Copy>,
    changed: Condvar,
}

impl Progress {
    fn new(state: Copy) -> Progress {
        Progress {
            state: Mutex::new(state),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Copy> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, to: Copy) {
        let mut state = self.lock();
        if *state != Copy::Stopped {
            *state = to;
        }
        self.changed.notify_all();
    }

    /// Records `bytes` copied; fails once the compressor has stopped.
    fn advance(&self, bytes: u64) -> std::io::Result<()> {
        let mut state = self.lock();
        if *state == Copy::Stopped {
            return Err(std::io::Error::other("the compressor stopped"));
        }
        *state = Copy::Growing(bytes);
        self.changed.notify_all();
        Ok(())
    }

    /// Waits until the copy has more than `done` bytes, is whole or stopped.
    fn wait_beyond(&self, done: u64) -> Copy {
        let mut state = self.lock();
        while matches!(*state, Copy::Growing(n) if n <= done) {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        *state
    }
}

/// The progress line of the copy stage.
fn copying(files: &Files<'_>) -> String {
    format!("copying {}", files.database)
}

/// Copies the pinned snapshot with the backup API, then checks the copy
/// while compressing it. Returns (size, SHA-256) of the compressed file.
pub(super) fn copy_then_compress(
    pinned: Pinned,
    files: &Files<'_>,
    cfg: &BackupConfig,
    deadline: Instant,
    phases: &mut Phases,
) -> Result<(u64, String), Failure> {
    let t = Instant::now();
    let shown = files.shown.stage(&copying(files), None);
    pinned.copy_with_backup_api(files.raw, files.dir, deadline)?;
    drop(shown);
    phases.copy = t.elapsed().as_secs_f64();
    let _shown = files.shown.stage("checking and compressing the copy", None);
    // The check reads the copy while the compressor streams it: they overlap,
    // so the wall time is the longer of the two, not their sum.
    let (checked, compressed) = std::thread::scope(|s| {
        let checking = s.spawn(|| check(files.raw, cfg, deadline));
        let t = Instant::now();
        let whole = Progress::new(Copy::Whole);
        let compressed = std::fs::File::open(files.raw)
            .and_then(|input| follow(input, files.packed, cfg, deadline, &whole))
            .and_then(|done| done.ok_or_else(|| std::io::Error::other("the copy stopped")));
        let seconds = t.elapsed().as_secs_f64();
        let checked = checking
            .join()
            .unwrap_or_else(|_| (Err("the check panicked".into()), 0.0));
        (checked, (compressed, seconds))
    });
    let (result, seconds) = checked;
    phases.check = seconds;
    result.map_err(Failure::Check)?;
    let (compressed, seconds) = compressed;
    phases.compress = seconds;
    compressed.map_err(|e| io_failure(e, files.dir, "compressing").into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::Connection;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::backups::pipeline::copy::pin;
    use crate::config::{Compression, IntegrityMode};

    fn config(dir: &Path) -> BackupConfig {
        BackupConfig {
            dir: dir.to_path_buf(),
            retention: Duration::from_secs(86_400),
            monthly_retention: Duration::from_secs(86_400),
            max_age: Duration::from_secs(86_400),
            compression: Compression::Zstd,
            level: 3,
            verify: IntegrityMode::Full,
            verify_newest: 1,
            timeout: Duration::from_secs(60),
            offsite: None,
            incremental_interval: None,
            full_interval: Duration::from_secs(86_400),
        }
    }

    /// Copies `db` one way or the other; returns the uncompressed copy after
    /// checking that the compressed file, its size and hash agree with it.
    fn back_up(db: &Path, out: &Path, streaming: bool) -> Vec<u8> {
        std::fs::create_dir(out).expect("mkdir");
        let (raw, packed) = (out.join("raw"), out.join("packed"));
        let files = Files {
            raw: &raw,
            packed: &packed,
            dir: out,
            database: "memory",
            shown: &Reporter::none(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let pinned = pin(db, out, deadline).expect("pin");
        assert!(pinned.pages_readable, "SQLite is built with sqlite_dbpage");
        let mut phases = Phases::default();
        let cfg = config(out);
        let done = if streaming {
            copy_while_compressing(pinned, &files, &cfg, deadline, &mut phases)
        } else {
            copy_then_compress(pinned, &files, &cfg, deadline, &mut phases)
        };
        let (size, sha256) = done.expect("backup");
        let compressed = std::fs::read(&packed).expect("packed");
        assert_eq!(size, compressed.len() as u64);
        assert_eq!(sha256, format!("{:x}", Sha256::digest(&compressed)));
        let copy = std::fs::read(&raw).expect("raw");
        assert_eq!(zstd::decode_all(&compressed[..]).expect("unzstd"), copy);
        copy
    }

    #[test]
    fn both_ways_copy_the_same_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("memory.db");
        // The newest pages stay in the WAL while this connection is open.
        let writer = Connection::open(&db).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
                 INSERT INTO t SELECT i, randomblob(900) FROM n;
                 PRAGMA wal_checkpoint(TRUNCATE);
                 UPDATE t SET v = zeroblob(900) WHERE id % 7 = 0;
                 DELETE FROM t WHERE id % 11 = 0;",
            )
            .expect("fill");
        let wal = std::fs::metadata(dir.path().join("memory.db-wal")).expect("wal");
        assert!(wal.len() > 0, "the snapshot is partly in the WAL");

        let streamed = back_up(&db, &dir.path().join("streamed"), true);
        let stepped = back_up(&db, &dir.path().join("stepped"), false);
        let page = 4096;
        assert_eq!(streamed.len(), stepped.len());
        assert!(streamed.len() > 100 * page);
        // The backup API rewrites page 1's counters at its end; every other
        // byte is the snapshot's.
        assert_eq!(streamed[100..], stepped[100..]);
        assert_eq!(streamed[18..20], [1, 1], "rollback mode");
        let copy = Connection::open(dir.path().join("streamed/raw")).expect("open copy");
        let (rows, zeroed): (i64, i64) = copy
            .query_row("SELECT count(*), sum(v = zeroblob(900)) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("count");
        assert_eq!(rows, 3000 - 3000 / 11);
        assert_eq!(
            zeroed,
            (1..=3000).filter(|i| i % 7 == 0 && i % 11 != 0).count() as i64
        );
    }
}
