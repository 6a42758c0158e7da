//! The `verify_backups` action: proves the newest backups can be restored.
//!
//! A matching checksum only proves the file is the one that was written. The
//! runbooks' restore test goes further, and so does this: decompress each of
//! the newest `verify_newest` backups to a temporary file, open it read-only
//! and run `quick_check`. Nothing is deleted; a failure names the files.
//! [`decompress`] and [`check_database_file`] are shared with the `backup`
//! action and with restore.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Action, ActionContext, ActionError, Outcome};
use crate::collector::backups::{checksum_matches, database_backups};
use crate::collector::integrity::problems;
use crate::collector::sqlite::map_for_full_pass;
use rusqlite::{Connection, OpenFlags};

use crate::config::IntegrityMode;

pub struct VerifyBackups;

impl Action for VerifyBackups {
    fn mutates(&self) -> bool {
        false
    }

    fn writes_files(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let db = ctx.database;
        let cfg = ctx.backup()?;
        let backups = database_backups(&cfg.dir, &db.name, ctx.deadline)?;
        let newest: Vec<_> = backups.into_iter().take(cfg.verify_newest).collect();
        if ctx.dry_run {
            return Ok(Outcome::new(format!(
                "would verify the {} newest backups of {}",
                newest.len(),
                db.name
            ))
            .figure("checked", 0.0));
        }
        let mut failed = Vec::new();
        for (done, backup) in newest.iter().enumerate() {
            if Instant::now() >= ctx.deadline {
                return Err(ActionError::Deadline(format!(
                    "verified {done} of {} backups ({} failed)",
                    newest.len(),
                    failed.len()
                )));
            }
            if let Err(why) = verify_backup(&backup.path, IntegrityMode::Quick, ctx.deadline) {
                tracing::error!(file = %backup.path.display(), %why, "backup failed verification");
                failed.push(format!("{} ({why})", file_name(&backup.path)));
            }
        }
        if !failed.is_empty() {
            return Err(ActionError::Failed(format!(
                "{} of {} backups of {} failed verification: {}",
                failed.len(),
                newest.len(),
                db.name,
                failed.join(", ")
            )));
        }
        Ok(Outcome::new(format!(
            "the {} newest backups of {} verified",
            newest.len(),
            db.name
        ))
        .figure("checked", newest.len() as f64)
        .figure("ok", newest.len() as f64)
        .figure("failed", 0.0))
    }
}

/// Checks one backup end to end: its sidecar matches, it decompresses (to a
/// hidden temporary file beside it, always removed) and the result passes
/// `mode`. The error says which step failed.
pub fn verify_backup(path: &Path, mode: IntegrityMode, deadline: Instant) -> Result<(), String> {
    let sidecar = super::retention::sidecar_of(path);
    match checksum_matches(path, &sidecar) {
        Ok(true) => {}
        Ok(false) => return Err("checksum does not match its .sha256".into()),
        Err(e) => return Err(format!("cannot check its checksum: {e}")),
    }
    let temp = TempFile(hidden_sibling(path, &format!("verify.{}.tmp", run_tag())));
    decompress(path, &temp.0, deadline).map_err(|e| format!("cannot decompress: {e}"))?;
    check_database_file(&temp.0, mode, deadline)
}

/// A file removed when dropped.
pub(crate) struct TempFile(pub PathBuf);

impl TempFile {
    /// Keeps the file: it is no longer temporary.
    pub(crate) fn keep(mut self) {
        self.0 = PathBuf::new();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// `<pid>-<n>`: unique to one run in this process, and naming the process
/// so that a later start can tell a live run's temporaries from a crash's.
pub(crate) fn run_tag() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// The pid in a temporary's name `.<...>.<pid>-<n>.tmp`; `None` for names
/// without one (older versions), which belong to no live run.
pub(crate) fn tag_pid(name: &str) -> Option<u32> {
    let (_, tag) = name.strip_suffix(".tmp")?.rsplit_once('.')?;
    let (pid, n) = tag.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// `<dir>/.<name>.<suffix>`: a name the exporter ignores and
/// `remove_stale_temporaries` cleans up when it ends in `.tmp`.
pub(crate) fn hidden_sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = file_name(path);
    path.with_file_name(format!(".{name}.{suffix}"))
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Decompresses `src` (zstd or gzip, told apart by their magic bytes) into a
/// new file `dst`, fsynced. Returns the bytes written. `dst` must not exist.
pub fn decompress(src: &Path, dst: &Path, deadline: Instant) -> std::io::Result<u64> {
    let mut input = std::fs::File::open(src)?;
    let mut magic = [0u8; 4];
    let n = input.read(&mut magic)?;
    drop(input);
    let file = std::fs::File::open(src)?;
    let mut reader: Box<dyn Read> = match &magic[..n] {
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
    };
    let mut out = super::private::create_new(dst)?;
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
