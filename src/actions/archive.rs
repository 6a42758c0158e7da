//! Archives: every row prune and purge delete is written to a file first.
//!
//! The rule is that nothing is lost: a crash at any moment leaves each row in
//! the database, in a complete archive, or in both. So an archive is written
//! under a temporary name, fsynced, renamed into place and its folder fsynced
//! before the delete that removes its rows may commit ([`sweep`] does that
//! ordering), and a reader accepts a file only when its trailer proves it
//! complete: a `.tmp` file, a cut stream or a missing trailer is refused.
//!
//! The format is zstd-compressed JSON lines, readable with `zstd -dc` and `jq`:
//! a header object naming the database, table and columns; one array per row,
//! each value with its own SQLite type (see [`ArchiveValue`]); and a trailer
//! with the row count and the SHA-256 of the row lines. Restoring, which is
//! idempotent, lives in `restore.rs`.
//!
//! Archives of rows that were changed rather than deleted (`tune_patterns`)
//! are format version 2: their first column is the row's `rowid` and their
//! header says `"restore": "rowid"`, so restoring sets each rowid's row back
//! to the archived values (the rows are still there, with other values). A
//! caretaker that reads only version 1 refuses them instead of skipping every
//! row as already present.

pub mod connection;
mod header;
mod restore;
pub mod sweep;
#[cfg(test)]
mod tests;
mod utc;
mod value;

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

pub use header::{ArchiveHeader, RestoreMode};
pub(crate) use restore::{primary_key, quote};
pub use restore::{restore_archive, restore_archives, RestoreArchiveReport};
pub use sweep::SweepOptions;
pub use utc::Utc;
use value::to_hex;
pub use value::ArchiveValue;

/// The `caretaker_archive` value of archives of deleted rows.
pub const FORMAT_VERSION: u32 = 1;
/// The `caretaker_archive` value of archives of changed rows
/// ([`RestoreMode::Rowid`]).
pub const ROWID_FORMAT_VERSION: u32 = 2;
/// The first column of a [`RestoreMode::Rowid`] archive.
pub const ROWID_COLUMN: &str = "rowid";
/// The ending of a complete archive's file name.
pub const ARCHIVE_SUFFIX: &str = ".jsonl.zst";
/// Appended to an archive's name while it is written; never a complete archive.
pub const TEMP_SUFFIX: &str = ".tmp";
/// zstd's default level: fast, and row text compresses well at it.
const LEVEL: i32 = 3;

/// The last line: proves the rows before it are all there.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    rows: u64,
    sha256_of_rows: String,
}

/// A complete archive, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Archive {
    pub header: ArchiveHeader,
    pub rows: Vec<Vec<ArchiveValue>>,
}

/// A file [`write_archive`] put in place.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenArchive {
    pub path: PathBuf,
    pub rows: u64,
    /// Compressed size on disk.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    // The cause is part of the message and deliberately not a `source()`:
    // `main` prints the chain, which would say it twice.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: incomplete archive ({detail}); it was cut short or never finished", path.display())]
    Incomplete { path: PathBuf, detail: String },
    #[error("{}: damaged archive at line {line}: {detail}", path.display())]
    Damaged {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error("{}: a {TEMP_SUFFIX} file is an unfinished archive and is never read", .0.display())]
    Temporary(PathBuf),
    #[error("cannot archive: {0}")]
    Invalid(String),
    #[error("{}: {error}", path.display())]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
    /// A rowid archive's row would overwrite a row added since.
    #[error("{0}")]
    WouldOverwrite(String),
    #[error("{}: row {row} was not inserted and no row with its key exists (a constraint refused it); nothing was restored", archive.display())]
    NotRestored { archive: PathBuf, row: usize },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |error| ArchiveError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Writes `rows` as a new archive in `dir` (created if missing) and returns
/// only once the file and its name are durable. Never replaces a file.
pub fn write_archive(
    dir: &Path,
    header: &ArchiveHeader,
    rows: &[Vec<ArchiveValue>],
) -> Result<WrittenArchive, ArchiveError> {
    let safe = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let stamp: String = header
        .created_at
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    if !safe(&header.table) || !safe(&header.reason) || stamp.len() != 16 {
        return Err(ArchiveError::Invalid(format!(
            "table {:?}, reason {:?} and created_at {:?} must give a plain file name",
            header.table, header.reason, header.created_at
        )));
    }
    if let Some(bad) = rows.iter().find(|r| r.len() != header.columns.len()) {
        return Err(ArchiveError::Invalid(format!(
            "a row has {} values for {} columns",
            bad.len(),
            header.columns.len()
        )));
    }
    create_dir_durably(dir)?;
    let base = format!("{}-{stamp}-{}", header.table, header.reason);
    let (path, temp, file) = create_temporary(dir, &base)?;
    let written = (|| -> io::Result<()> {
        let mut out = zstd::Encoder::new(BufWriter::new(file), LEVEL)?;
        out.include_checksum(true)?;
        let mut line = serde_json::to_vec(header)?;
        line.push(b'\n');
        out.write_all(&line)?;
        let mut hash = Sha256::new();
        for row in rows {
            let values: Vec<Json> = row.iter().map(ArchiveValue::to_json).collect();
            let mut line = serde_json::to_vec(&values)?;
            line.push(b'\n');
            hash.update(&line);
            out.write_all(&line)?;
        }
        let trailer = Trailer {
            rows: rows.len() as u64,
            sha256_of_rows: to_hex(&hash.finalize()),
        };
        let mut line = serde_json::to_vec(&trailer)?;
        line.push(b'\n');
        out.write_all(&line)?;
        let file = out.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        // Best effort: an unfinished .tmp is harmless and removed later anyway.
        let _ = fs::remove_file(&temp);
        return Err(ArchiveError::Io {
            path: temp,
            error: e,
        });
    }
    fs::rename(&temp, &path).map_err(io_at(&temp))?;
    sync_dir(dir)?;
    let bytes = fs::metadata(&path).map_err(io_at(&path))?.len();
    Ok(WrittenArchive {
        path,
        rows: rows.len() as u64,
        bytes,
    })
}

/// Picks the first free name (`base`, then `base-2`, ...) and creates its
/// temporary file, refusing to reuse an existing one.
fn create_temporary(dir: &Path, base: &str) -> Result<(PathBuf, PathBuf, File), ArchiveError> {
    for n in 1u32..10_000 {
        let name = match n {
            1 => format!("{base}{ARCHIVE_SUFFIX}"),
            n => format!("{base}-{n}{ARCHIVE_SUFFIX}"),
        };
        let path = dir.join(&name);
        let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
        if path.exists() {
            continue;
        }
        // 0600: the archive holds the deleted rows (see `private`).
        match crate::store::private::create_new(&temp) {
            Ok(file) => return Ok((path, temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(ArchiveError::Io {
                    path: temp,
                    error: e,
                })
            }
        }
    }
    Err(ArchiveError::Invalid(format!(
        "no free archive name for {base} in {}",
        dir.display()
    )))
}

fn create_dir_durably(dir: &Path) -> Result<(), ArchiveError> {
    if dir.is_dir() {
        return Ok(());
    }
    crate::store::private::create_dir_all(dir).map_err(io_at(dir))?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Makes a rename or creation in `dir` survive a power failure.
fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

/// Reads a complete archive; refuses temporaries, cut or damaged files.
pub fn read_archive(path: &Path) -> Result<Archive, ArchiveError> {
    if is_temporary(path) {
        return Err(ArchiveError::Temporary(path.to_path_buf()));
    }
    let incomplete = |detail: String| ArchiveError::Incomplete {
        path: path.to_path_buf(),
        detail,
    };
    let damaged = |line: usize, detail: String| ArchiveError::Damaged {
        path: path.to_path_buf(),
        line,
        detail,
    };
    let file = File::open(path).map_err(io_at(path))?;
    let mut text = Vec::new();
    zstd::Decoder::new(file)
        .and_then(|mut d| d.read_to_end(&mut text))
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                incomplete(format!("the compressed stream ends early: {e}"))
            }
            _ => damaged(0, format!("cannot decompress: {e}")),
        })?;
    let Some(body) = text.strip_suffix(b"\n") else {
        return Err(incomplete("the last line is unfinished".into()));
    };
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    let header: ArchiveHeader = serde_json::from_slice(lines[0])
        .map_err(|e| damaged(1, format!("not an archive header: {e}")))?;
    let expected = match header.restore {
        RestoreMode::Insert => FORMAT_VERSION,
        RestoreMode::Rowid => ROWID_FORMAT_VERSION,
    };
    if header.caretaker_archive != expected {
        let v = header.caretaker_archive;
        return Err(damaged(
            1,
            format!("format version {v} with restore {:?}, this caretaker reads {FORMAT_VERSION} (insert) and {ROWID_FORMAT_VERSION} (rowid)", header.restore),
        ));
    }
    if header.restore == RestoreMode::Rowid
        && header.columns.first().map(String::as_str) != Some(ROWID_COLUMN)
    {
        return Err(damaged(
            1,
            format!("a rowid archive's first column must be {ROWID_COLUMN}"),
        ));
    }
    let mut hash = Sha256::new();
    let mut rows = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(1) {
        if line.first() != Some(&b'[') {
            let trailer: Trailer = serde_json::from_slice(line)
                .map_err(|e| damaged(i + 1, format!("neither a row nor the trailer: {e}")))?;
            if i + 1 != lines.len() {
                return Err(damaged(i + 1, "lines follow the trailer".into()));
            }
            if trailer.rows != rows.len() as u64 {
                let n = rows.len();
                return Err(incomplete(format!(
                    "the trailer counts {} rows, the file holds {n}",
                    trailer.rows
                )));
            }
            if trailer.sha256_of_rows != to_hex(&hash.finalize()) {
                return Err(damaged(
                    i + 1,
                    "the rows do not match the trailer's SHA-256".into(),
                ));
            }
            return Ok(Archive { header, rows });
        }
        hash.update(line);
        hash.update(b"\n");
        let values: Vec<Json> =
            serde_json::from_slice(line).map_err(|e| damaged(i + 1, format!("not a row: {e}")))?;
        if values.len() != header.columns.len() {
            let n = header.columns.len();
            return Err(damaged(
                i + 1,
                format!("{} values for {n} columns", values.len()),
            ));
        }
        let row = values
            .iter()
            .map(ArchiveValue::from_json)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| damaged(i + 1, "a value of no SQLite type".into()))?;
        rows.push(row);
    }
    Err(incomplete("no trailer".into()))
}

fn is_temporary(path: &Path) -> bool {
    path.to_string_lossy().ends_with(TEMP_SUFFIX)
}

fn dir_entries(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ArchiveError::Io {
                path: dir.to_path_buf(),
                error: e,
            })
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(io_at(dir))?.path());
    }
    paths.sort();
    Ok(paths)
}

/// The complete archives in `dir` (by name; temporaries are left out), sorted.
/// A missing folder holds none.
pub fn list_archives(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut paths = dir_entries(dir)?;
    paths.retain(|p| p.to_string_lossy().ends_with(ARCHIVE_SUFFIX));
    Ok(paths)
}

/// Removes the unfinished archives a crash left in `dir` and returns them.
/// Their rows were never deleted: a delete commits only after the rename.
pub fn remove_stale_temporaries(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut removed = Vec::new();
    for path in dir_entries(dir)? {
        if path
            .to_string_lossy()
            .ends_with(&format!("{ARCHIVE_SUFFIX}{TEMP_SUFFIX}"))
        {
            fs::remove_file(&path).map_err(io_at(&path))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}
