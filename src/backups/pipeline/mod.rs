//! The backup pipeline: a consistent, verified, compressed and checksummed
//! copy of a live database, written into its [`BackupSet`](super::BackupSet),
//! which the exporter then counts as a backup. The `backup` action runs it.
//!
//! Why it is built this way:
//! - The copy is taken inside one read transaction on a read-only
//!   connection (see `copy`): pages are copied as they are (no B-tree
//!   rebuild as with `VACUUM INTO`), the pinned snapshot never changes under
//!   writes, and in WAL mode the application keeps writing. The deadline (the
//!   action's, or `backup.timeout` if sooner) is checked as it goes. The copy
//!   is marked rollback-mode so it never needs a `-wal` file.
//! - The compressor follows the copy through the file while it is written,
//!   and the check of the copy runs while the compressor finishes (see
//!   `stages`): `seconds_copy`, `seconds_check` and `seconds_compress`
//!   overlap. If the check fails, every file is removed as for any other
//!   error.
//! - Every intermediate file has a hidden name ending in `.<pid>-<n>.tmp`
//!   inside the backup folder, unique to its run: the exporter ignores them,
//!   they are removed on any error, and [`remove_stale_temporaries`](super::temporaries::remove_stale_temporaries) removes
//!   what a crash left behind, never a live run's. The run holds the
//!   database's lock (two backups of one database take turns) and its name
//!   has millisecond resolution, moved on by a millisecond if taken.
//! - Every file is created 0600 and a new folder 0700 (see `private`): a
//!   backup is as sensitive as the database.
//! - Compression and hashing happen in one streaming pass (zstd on every
//!   core, or gzip), written back to disk a MiB at a time as it is written
//!   (see `sink`) so an application's fsync never queues behind a large
//!   flush. The data file is renamed into place before its `.sha256`
//!   sidecar, so a crash between the two leaves a file the exporter reports
//!   as unverified, never a "backup" that is not one.
//! - Its manifest (`NAME.manifest.json`: checksum of the SQLite file, pages,
//!   schema hash, migrations, rows per table; see
//!   [`manifest`](super::manifest)) is described from the
//!   uncompressed copy and written between the two, so every verified
//!   backup has one: restore drills compare against it.
//! - A full disk is refused up front when the folder cannot hold the copy,
//!   and reported as such (not as an SQLite error) when it fills mid-way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

mod compress;
mod copy;
mod sink;
mod stages;

use super::manifest::{describe_file, write_local};
use super::names::{backup_file_name, parse_backup_file_name};
use super::sidecar::{sidecar_line, CHECKSUM_SUFFIX};
use super::temporaries::{run_tag, TempFile};
use super::BackupError;
use crate::config::Compression;
use crate::config::{BackupConfig, DatabaseConfig};
use crate::progress::Reporter;
use crate::store::private;

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

/// Seconds spent in each step, for the outcome's figures. The steps
/// overlap, so they do not add up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phases {
    /// The page copy.
    pub copy: f64,
    /// `quick_check` or `integrity_check` of the copy, once it is whole.
    pub check: f64,
    /// Compressing, hashing and fsyncing: with `sqlite_dbpage` from the
    /// start of the copy, otherwise after it.
    pub compress: f64,
}

/// Copies, verifies, compresses and publishes one backup named `name` in
/// `cfg.dir` (which must exist). On any error every file it created is gone.
pub fn write_backup(
    db: &DatabaseConfig,
    cfg: &BackupConfig,
    name: &str,
    deadline: Instant,
    progress: &Reporter,
) -> Result<Written, BackupError> {
    let dir = &cfg.dir;
    let final_path = dir.join(name);
    let sidecar_path = dir.join(format!("{name}{CHECKSUM_SUFFIX}"));
    if final_path.exists() {
        return Err(BackupError::Refused(format!(
            "{} already exists",
            final_path.display()
        )));
    }
    // This run's own names: another run's temporaries are never touched.
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let tag = run_tag();
    let raw = TempFile(dir.join(format!(".{stem}.{tag}.tmp")));
    let packed = TempFile(dir.join(format!(".{name}.{tag}.tmp")));
    let sidecar_temp = TempFile(dir.join(format!(".{name}{CHECKSUM_SUFFIX}.{tag}.tmp")));

    let pinned = copy::pin(&db.path, dir, deadline)?;
    let bytes_copied = u64::try_from(pinned.bytes()).unwrap_or(0);
    let mut phases = Phases::default();
    let files = stages::Files {
        raw: &raw.0,
        packed: &packed.0,
        dir,
        database: &db.name,
        shown: progress,
    };
    let (bytes_written, sha256) = if pinned.pages_readable {
        stages::copy_while_compressing(pinned, &files, cfg, deadline, &mut phases)
    } else {
        stages::copy_then_compress(pinned, &files, cfg, deadline, &mut phases)
    }
    .map_err(|e| match e {
        stages::Failure::Check(why) => {
            BackupError::Failed(format!("the copy of {} is unusable: {why}", db.name))
        }
        stages::Failure::Other(e) => e,
    })?;

    // What the copy holds, from the copy itself (still uncompressed here).
    let taken = parse_backup_file_name(&db.name, name).unwrap_or_else(SystemTime::now);
    let manifest = describe_file(&raw.0, &db.name, name, taken).map_err(|e| {
        BackupError::Failed(format!("cannot describe the copy of {}: {e}", db.name))
    })?;

    // The data file first, then its manifest: until the sidecar exists the
    // backup is "unverified", and a verified backup always has its manifest.
    std::fs::rename(&packed.0, &final_path)?;
    let published = TempFile(final_path.clone());
    let described = TempFile(
        write_local(&final_path, &manifest)
            .map_err(|e| io_failure(e, dir, "writing the manifest"))?,
    );
    let line = sidecar_line(&sha256, name);
    write_synced(&sidecar_temp.0, line.as_bytes())
        .map_err(|e| io_failure(e, dir, "writing the checksum"))?;
    std::fs::rename(&sidecar_temp.0, &sidecar_path)?;
    let sync = std::fs::File::open(dir).and_then(|d| d.sync_all());
    if let Err(e) = sync {
        let _ = std::fs::remove_file(&sidecar_path);
        return Err(e.into());
    }
    published.keep();
    described.keep();
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

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = private::create_new(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A full disk (or quota) becomes a clear message; other errors pass through.
fn io_failure(e: std::io::Error, dir: &Path, doing: &str) -> BackupError {
    let full = e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error());
    match e.kind() {
        _ if full => no_room(dir, doing),
        std::io::ErrorKind::TimedOut => BackupError::Deadline(e.to_string()),
        _ => BackupError::Io(e),
    }
}

pub(super) fn no_room(dir: &Path, doing: &str) -> BackupError {
    BackupError::Failed(format!(
        "no space left in {} while {doing}; the partial backup was removed and older backups are untouched",
        dir.display()
    ))
}

/// The name of a backup of `database` taken at `now` that is not taken in
/// `dir` yet: the time in it is moved on a millisecond at a time while a
/// backup (or its sidecar) of that name exists.
pub(super) fn free_name(
    dir: &Path,
    database: &str,
    now: SystemTime,
    compression: Compression,
) -> String {
    let mut taken = now;
    for _ in 0..1000 {
        let name = backup_file_name(database, taken, compression);
        let sidecar = dir.join(format!("{name}{CHECKSUM_SUFFIX}"));
        if !dir.join(&name).exists() && !sidecar.exists() {
            return name;
        }
        taken += Duration::from_millis(1);
    }
    backup_file_name(database, taken, compression)
}
