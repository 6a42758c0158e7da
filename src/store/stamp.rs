//! Whether a database file has changed since a collector last read it,
//! told without opening it: a `stat` and a few header bytes of the file and
//! of its write-ahead log.
//!
//! A commit in rollback-journal mode rewrites the file and bumps the header's
//! file change counter (bytes 24-27); in WAL mode it appends frames to the
//! `-wal` file (its size and mtime change), and a WAL that restarts from its
//! start after a checkpoint gets new salts (bytes 16-23 of its header). The
//! file's identity (device, inode) tells a file replaced by rename, as a
//! restore does. At a thousand databases this is what lets an idle fleet
//! cost a `stat` per database per pass instead of a full read.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

/// One file's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
    /// The header bytes that change with the content.
    header: Vec<u8>,
}

impl Part {
    fn read(path: &Path, header: std::ops::Range<usize>) -> std::io::Result<Part> {
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        let mut head = vec![0u8; header.end];
        let mut filled = 0;
        while filled < head.len() {
            match file.read(&mut head[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        head.truncate(filled);
        Ok(Part {
            device: meta.dev(),
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
            header: head.get(header).map(<[u8]>::to_vec).unwrap_or_default(),
        })
    }
}

/// A database file and its WAL as they are now: equal stamps mean the
/// content cannot have changed in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    database: Part,
    wal: Option<Part>,
}

impl FileStamp {
    /// Reads the stamp of the database at `path`; an error when the file
    /// itself cannot be read (a missing WAL is part of the stamp).
    pub fn read(path: &Path) -> std::io::Result<FileStamp> {
        let database = Part::read(path, 24..28)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = match Part::read(Path::new(&wal), 12..24) {
            Ok(part) => Some(part),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(FileStamp { database, wal })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn every_commit_changes_the_stamp_and_reading_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.db");
        for mode in ["DELETE", "WAL"] {
            let _ = std::fs::remove_file(&path);
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(&format!(
                "PRAGMA journal_mode={mode}; CREATE TABLE t (x); INSERT INTO t VALUES (1);"
            ))
            .expect("fill");
            let before = FileStamp::read(&path).expect("stamp");
            let reader = Connection::open(&path).expect("reader");
            let n: i64 = reader
                .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .expect("read");
            assert_eq!(n, 1);
            assert_eq!(FileStamp::read(&path).expect("stamp"), before, "{mode}");
            // Same size, same row count: only the content changes.
            conn.execute("UPDATE t SET x = 2", []).expect("update");
            assert_ne!(FileStamp::read(&path).expect("stamp"), before, "{mode}");
            if mode == "WAL" {
                let after = FileStamp::read(&path).expect("stamp");
                conn.execute_batch("PRAGMA wal_checkpoint(RESTART); UPDATE t SET x = 3;")
                    .expect("restart");
                assert_ne!(FileStamp::read(&path).expect("stamp"), after);
            }
        }
    }
}
