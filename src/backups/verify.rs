//! Whether a backup can be restored: checksum, decompression, SQLite's check.
//!
//! A matching checksum only proves the file is the one that was written. The
//! runbooks' restore test goes further, and so does this: decompress the
//! backup to a temporary file, open it read-only and run `quick_check` (or
//! `integrity_check`). [`decompress_into`] and [`check_database_file`] are
//! also the backup pipeline's check of a new copy and restore's check of the
//! file it is about to put in place.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::sidecar::{checksum_matches, sidecar_of};
use super::temporaries::{hidden_sibling, run_tag, TempFile};
use crate::config::IntegrityMode;
use crate::progress::{Reporter, Stage};
use crate::store::integrity::problems;
use crate::store::sqlite::map_for_full_pass;

/// Checks one backup end to end: its sidecar matches, it decompresses (to a
/// hidden temporary file beside it, always removed) and the result passes
/// `mode`. The error says which step failed.
/// `progress` sees the decompression (bytes of the backup read) and the check.
pub fn verify_backup(
    path: &Path,
    mode: IntegrityMode,
    deadline: Instant,
    progress: &Reporter,
) -> Result<(), String> {
    let sidecar = sidecar_of(path);
    match checksum_matches(path, &sidecar) {
        Ok(true) => {}
        Ok(false) => return Err("checksum does not match its .sha256".into()),
        Err(e) => return Err(format!("cannot check its checksum: {e}")),
    }
    let temp = TempFile(hidden_sibling(path, &format!("verify.{}.tmp", run_tag())));
    let mut out = crate::store::private::create_new(&temp.0)
        .map_err(|e| format!("cannot decompress: {e}"))?;
    decompress_into(path, &mut out, deadline, progress)
        .map_err(|e| format!("cannot decompress: {e}"))?;
    drop(out);
    let _stage = progress.stage(&format!("checking {}", file_name(path)), None);
    check_database_file(&temp.0, mode, deadline)
}

/// The last part of `path`, for progress lines.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Decompresses `src` (zstd or gzip, told apart by their magic bytes) into a
/// new file `dst` (mode 0600), fsynced. Returns the bytes written. `dst` must
/// not exist.
pub fn decompress(src: &Path, dst: &Path, deadline: Instant) -> std::io::Result<u64> {
    let mut out = crate::store::private::create_new(dst)?;
    decompress_into(src, &mut out, deadline, &Reporter::none())
}

/// Decompresses `src` into `out`, already open for writing (restore creates
/// it through the database folder's descriptor), and fsyncs it. Returns the
/// bytes written. `progress` sees the bytes of `src` read.
pub fn decompress_into(
    src: &Path,
    out: &mut File,
    deadline: Instant,
    progress: &Reporter,
) -> std::io::Result<u64> {
    let total = std::fs::metadata(src)?.len();
    let stage = progress.stage(&format!("decompressing {}", file_name(src)), Some(total));
    let mut reader = decoder(src, stage)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        if Instant::now() >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "deadline passed while decompressing",
            ));
        }
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
    out.sync_all()?;
    Ok(total)
}

/// A reader of the decompressed content of `src`, by its magic bytes: the
/// one place that tells zstd from gzip.
fn decoder(src: &Path, stage: Stage) -> std::io::Result<Box<dyn Read>> {
    let mut input = File::open(src)?;
    let mut magic = [0u8; 4];
    let n = input.read(&mut magic)?;
    drop(input);
    let file = stage.reader(File::open(src)?);
    Ok(match &magic[..n] {
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::stream::read::Decoder::new(file)?),
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        ))),
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "neither zstd nor gzip",
            ))
        }
    })
}

/// The file is an SQLite database (by its header, then by opening it
/// read-only) and passes `mode`'s check.
pub fn check_database_file(
    path: &Path,
    mode: IntegrityMode,
    deadline: Instant,
) -> Result<(), String> {
    let mut header = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| format!("cannot read an SQLite header: {e}"))?;
    if &header != b"SQLite format 3\0" {
        return Err("not an SQLite database".into());
    }
    let conn = open_immutable(path, deadline).map_err(|e| format!("cannot open: {e}"))?;
    let found = problems(&conn, mode).map_err(|e| format!("check failed: {e}"))?;
    if found.len() == 1 && found[0] == "ok" {
        Ok(())
    } else {
        Err(format!("integrity problems: {}", found.join("; ")))
    }
}

/// Opens a private copy read-only with `immutable=1`: no locks and no `-wal`
/// or `-shm` files beside it, whatever journal mode its header names.
fn open_immutable(path: &Path, deadline: Instant) -> rusqlite::Result<Connection> {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let mut conn = Connection::open_with_flags(uri, flags)?;
    conn.busy_timeout(Duration::from_millis(500))?;
    map_for_full_pass(&conn)?;
    conn.progress_handler(10_000, Some(move || Instant::now() >= deadline))?;
    Ok(conn)
}
