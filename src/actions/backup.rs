//! The `backup` action: a consistent, verified, compressed and checksummed
//! copy of a live database, which the exporter then counts as a backup.
//!
//! Why it is built this way:
//! - The copy uses SQLite's backup API inside one read transaction on a
//!   read-only connection (see `copy`): pages are copied as they are (no
//!   B-tree rebuild as with `VACUUM INTO`), the pinned snapshot keeps the
//!   steps from restarting under writes, and in WAL mode the application
//!   keeps writing. The deadline (the action's, or `backup.timeout` if sooner)
//!   is checked between steps. The copy is marked rollback-mode so it never
//!   needs a `-wal` file.
//! - The check of the copy runs on its own thread while the compressor
//!   streams the same file: `seconds_check` and `seconds_compress` overlap.
//!   If the check fails, every file is removed as for any other error.
//! - Every intermediate file has a hidden name ending in `.tmp` inside the
//!   backup folder: the exporter ignores them, they are removed on any error,
//!   and [`remove_stale_temporaries`] removes what a crash left behind.
//! - Compression and hashing happen in one streaming pass (zstd on every
//!   core, or gzip), written back to disk a MiB at a time as it is written
//!   (see `sink`) so an application's fsync never queues behind a large
//!   flush. The data file is renamed into place before its `.sha256`
//!   sidecar, so a crash between the two leaves a file the exporter reports
//!   as unverified, never a "backup" that is not one.
//! - A full disk is refused up front when the folder cannot hold the copy,
//!   and reported as such (not as an SQLite error) when it fills mid-way.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

mod copy;
mod sink;

use super::verify_backups::{check_database_file, file_name, TempFile};
use super::{Action, ActionContext, ActionError, Outcome};
use crate::collector::backups::{backup_file_name, CHECKSUM_SUFFIX};
use crate::config::{BackupConfig, Compression, DatabaseConfig};
use copy::copy_database;
use sink::Sink;

pub struct Backup;

impl Action for Backup {
    fn name(&self) -> &'static str {
        "backup"
    }

    /// Only reads the application database.
    fn mutates(&self) -> bool {
        false
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let db = ctx.database;
        let cfg = ctx.backup()?;
        let started = Instant::now();
        let deadline = ctx.deadline.min(started + cfg.timeout);
        let name = backup_file_name(&db.name, ctx.now, cfg.compression);
        let bytes_database = std::fs::metadata(&db.path)
            .map_err(|e| ActionError::Failed(format!("cannot read {}: {e}", db.path.display())))?
            .len();
        if ctx.dry_run {
            let summary = format!(
                "would back up {} ({bytes_database} bytes) to {}",
                db.name,
                cfg.dir.join(&name).display()
            );
            return Ok(Outcome::new(summary).figure("bytes_database", bytes_database as f64));
        }
        std::fs::create_dir_all(&cfg.dir)?;
        let written = write_backup(db, cfg, &name, deadline)?;
        let seconds = started.elapsed().as_secs_f64();
        let (files_removed, retention_note) =
            match super::retention::apply(&db.name, cfg, ctx.now, deadline, false) {
                Ok(pruned) => (pruned.files.len(), String::new()),
                Err(e) => {
                    tracing::warn!(database = %db.name, error = %e, "backup retention failed");
                    (0, format!("; retention failed: {e}"))
                }
            };
        let ratio = written.bytes_copied as f64 / written.bytes_written.max(1) as f64;
        let summary = format!(
            "backed up {} to {} ({} bytes, ratio {ratio:.1}) in {seconds:.1} s; removed {files_removed} old backups{retention_note}",
            db.name,
            written.path.display(),
            written.bytes_written,
        );
        Ok(Outcome::new(summary)
            .figure("bytes_database", bytes_database as f64)
            .figure("bytes_copied", written.bytes_copied as f64)
            .figure("bytes_written", written.bytes_written as f64)
            .figure("compression_ratio", ratio)
            .figure("seconds", seconds)
            .figure("seconds_copy", written.phases.copy)
            .figure("seconds_check", written.phases.check)
            .figure("seconds_compress", written.phases.compress)
            .figure("files_removed", files_removed as f64))
    }
}

/// A backup in place, with its sidecar.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub path: PathBuf,
    /// Size of the uncompressed consistent copy.
    pub bytes_copied: u64,
    /// Size of the compressed file.
    pub bytes_written: u64,
    pub sha256: String,
    pub phases: Phases,
}

/// Seconds spent in each step, for the outcome's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phases {
    /// The backup API's page copy.
    pub copy: f64,
    /// `quick_check` or `integrity_check` of the copy; runs at the same time
    /// as `compress`, so the two overlap and do not add up.
    pub check: f64,
    /// Compressing, hashing and fsyncing (overlapping `check`).
    pub compress: f64,
}

/// Copies, verifies, compresses and publishes one backup named `name` in
/// `cfg.dir` (which must exist). On any error every file it created is gone.
pub fn write_backup(
    db: &DatabaseConfig,
    cfg: &BackupConfig,
    name: &str,
    deadline: Instant,
) -> Result<Written, ActionError> {
    let dir = &cfg.dir;
    let final_path = dir.join(name);
    let sidecar_path = dir.join(format!("{name}{CHECKSUM_SUFFIX}"));
    if final_path.exists() {
        return Err(ActionError::Refused(format!(
            "{} already exists",
            final_path.display()
        )));
    }
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let raw = TempFile(dir.join(format!(".{stem}.tmp")));
    let packed = TempFile(dir.join(format!(".{name}.tmp")));
    let sidecar_temp = TempFile(dir.join(format!(".{name}{CHECKSUM_SUFFIX}.tmp")));
    for stale in [&raw.0, &packed.0, &sidecar_temp.0] {
        let _ = std::fs::remove_file(stale);
    }

    let mut phases = Phases::default();
    let t = Instant::now();
    copy_database(&db.path, &raw.0, dir, deadline)?;
    phases.copy = t.elapsed().as_secs_f64();
    // The check reads the copy while the compressor streams it: they overlap,
    // so the wall time is the longer of the two, not their sum.
    let bytes_copied = std::fs::metadata(&raw.0)?.len();
    let (checked, compressed) = std::thread::scope(|s| {
        let check = s.spawn(|| {
            let t = Instant::now();
            let result = check_database_file(&raw.0, cfg.verify, deadline);
            (result, t.elapsed().as_secs_f64())
        });
        let t = Instant::now();
        let compressed = compress(&raw.0, &packed.0, cfg, deadline);
        let compress_seconds = t.elapsed().as_secs_f64();
        let checked = check
            .join()
            .unwrap_or_else(|_| (Err("the check panicked".into()), 0.0));
        (checked, (compressed, compress_seconds))
    });
    let (check_result, check_seconds) = checked;
    phases.check = check_seconds;
    check_result.map_err(|why| {
        ActionError::Failed(format!("the copy of {} is unusable: {why}", db.name))
    })?;
    let (compressed, compress_seconds) = compressed;
    let (bytes_written, sha256) = compressed.map_err(|e| io_failure(e, dir, "compressing"))?;
    phases.compress = compress_seconds;

    // The data file first: until the sidecar exists it is "unverified".
    std::fs::rename(&packed.0, &final_path)?;
    let published = TempFile(final_path.clone());
    let line = format!("{sha256}  {name}\n");
    write_synced(&sidecar_temp.0, line.as_bytes())
        .map_err(|e| io_failure(e, dir, "writing the checksum"))?;
    std::fs::rename(&sidecar_temp.0, &sidecar_path)?;
    let sync = std::fs::File::open(dir).and_then(|d| d.sync_all());
    if let Err(e) = sync {
        let _ = std::fs::remove_file(&sidecar_path);
        return Err(e.into());
    }
    published.keep();
    drop(raw);
    Ok(Written {
        path: final_path,
        bytes_copied,
        bytes_written,
        sha256,
        phases,
    })
}

/// Bytes available to us on the filesystem holding `dir`.
pub(super) fn available_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Streams `raw` through the configured compressor into `packed`, hashing the
/// compressed bytes in the same pass; fsyncs. Returns (size, hex SHA-256).
fn compress(
    raw: &Path,
    packed: &Path,
    cfg: &BackupConfig,
    deadline: Instant,
) -> std::io::Result<(u64, String)> {
    let file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(packed)?;
    let sink = Sink::new(file);
    let mut encoder = match cfg.compression {
        Compression::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(sink, cfg.level.clamp(1, 22))?;
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            e.multithread(u32::try_from(workers).unwrap_or(1))?;
            e.include_checksum(true)?;
            Encoder::Zstd(e)
        }
        Compression::Gzip => {
            let level = u32::try_from(cfg.level.clamp(1, 9)).unwrap_or(6);
            Encoder::Gzip(flate2::write::GzEncoder::new(
                sink,
                flate2::Compression::new(level),
            ))
        }
    };
    let mut input = std::fs::File::open(raw)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if Instant::now() >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "deadline passed while compressing",
            ));
        }
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        encoder.write_all(&buf[..n])?;
    }
    encoder.finish()?.finish()
}

enum Encoder<W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(flate2::write::GzEncoder<W>),
}

impl<W: Write> Encoder<W> {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.write_all(buf),
            Encoder::Gzip(e) => e.write_all(buf),
        }
    }

    fn finish(self) -> std::io::Result<W> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A full disk (or quota) becomes a clear message; other errors pass through.
fn io_failure(e: std::io::Error, dir: &Path, doing: &str) -> ActionError {
    let full = e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error());
    match e.kind() {
        _ if full => no_room(dir, doing),
        std::io::ErrorKind::TimedOut => ActionError::Deadline(e.to_string()),
        _ => ActionError::Io(e),
    }
}

pub(super) fn no_room(dir: &Path, doing: &str) -> ActionError {
    ActionError::Failed(format!(
        "no space left in {} while {doing}; the partial backup was removed and older backups are untouched",
        dir.display()
    ))
}

/// Deletes the hidden `.*.tmp` files a crash left in a backup folder; a
/// missing folder has none. Called by the daemon at startup, before any
/// backup can be running.
pub fn remove_stale_temporaries(dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = file_name(&entry.path());
        if name.starts_with('.') && name.ends_with(".tmp") && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            tracing::info!(file = %entry.path().display(), "removed a stale temporary file");
            removed += 1;
        }
    }
    Ok(removed)
}
