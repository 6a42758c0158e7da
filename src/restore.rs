//! Putting a backup back in place of a database: seed 001's recovery
//! procedure, with its gaps closed.
//!
//! The runbook decompresses straight over the live file and checks afterwards.
//! Here every step is reversible until the end: the chosen backup's checksum
//! is verified, it is decompressed to a hidden file beside the database and
//! `integrity_check`ed there; only then is the current file (with its `-wal`
//! and `-shm`) renamed to `<db>.before-restore` and the restored one renamed
//! into place. A final check failing puts the old files back. While another
//! process has the database open the restore is refused (its writes would go
//! to a file that no longer has a name), unless forced.
//!
//! The CLI (`caretaker restore`, `caretaker backups list`) calls [`restore`]
//! and [`list_backups`]; nothing here prints.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::actions::retention::sidecar_of;
use crate::actions::verify_backups::{check_database_file, decompress, hidden_sibling, TempFile};
use crate::collector::backups::{checksum_matches, database_backups, DatabaseBackup};
use crate::collector::integrity::problems;
use crate::config::{DatabaseConfig, IntegrityMode};

/// Which backup to restore.
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreChoice {
    /// The newest backup that verifies.
    Newest,
    /// This file (relative names are looked up in the backup folder).
    File(PathBuf),
    /// The newest backup that verifies taken strictly before this time.
    Before(SystemTime),
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreReport {
    /// The backup now in place.
    pub backup: PathBuf,
    /// Newer candidates passed over, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Where the previous database (and its `-wal`/`-shm`) went, if there was one.
    pub moved_aside: Vec<PathBuf>,
    /// Size of the restored database.
    pub bytes: u64,
    pub seconds: f64,
}

/// A process that has the database open.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("database {0} has no backup folder configured")]
    NotConfigured(String),
    #[error("no usable backup for {database}{}", skipped_text(.skipped))]
    NoBackup {
        database: String,
        skipped: Vec<(PathBuf, String)>,
    },
    #[error("{} is open in {}; stop them first, or force the restore", .path.display(), holders_text(.holders))]
    InUse { path: PathBuf, holders: Vec<Holder> },
    #[error("{0} exists from an earlier restore; move it away first")]
    BeforeRestoreExists(PathBuf),
    #[error(
        "the restored database failed its final check ({0}); the previous database was put back"
    )]
    RolledBack(String),
    #[error("{action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn skipped_text(skipped: &[(PathBuf, String)]) -> String {
    let parts: Vec<String> = skipped
        .iter()
        .map(|(p, why)| format!("{}: {why}", p.display()))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (skipped {})", parts.join("; "))
    }
}

fn holders_text(holders: &[Holder]) -> String {
    let parts: Vec<String> = holders
        .iter()
        .map(|h| format!("{} (pid {})", h.command, h.pid))
        .collect();
    parts.join(", ")
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError {
    let path = path.to_path_buf();
    move |source| RestoreError::Io {
        action,
        path,
        source,
    }
}

/// No deadline for an operator's restore, but the shared helpers want one.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 86_400)
}

/// The database's backups, newest first, with whether each checksum matches.
pub fn list_backups(db: &DatabaseConfig) -> Result<Vec<DatabaseBackup>, RestoreError> {
    let cfg = db
        .backup
        .as_ref()
        .ok_or_else(|| RestoreError::NotConfigured(db.name.clone()))?;
    database_backups(&cfg.dir, &db.name, far_future()).map_err(io("listing", &cfg.dir))
}

/// Restores `db` from the chosen backup. Refuses while another process has
/// the database open, unless `force`.
pub fn restore(
    db: &DatabaseConfig,
    choice: RestoreChoice,
    force: bool,
) -> Result<RestoreReport, RestoreError> {
    let started = Instant::now();
    refuse_if_open(&db.path, force)?;
    let aside = db
        .path
        .with_file_name(format!("{}.before-restore", file_name(&db.path)));
    if aside.exists() {
        return Err(RestoreError::BeforeRestoreExists(aside));
    }
    let candidates = candidates(db, choice)?;
    let temp = TempFile(hidden_sibling(&db.path, "restore.tmp"));
    let _ = std::fs::remove_file(&temp.0);
    let mut skipped = Vec::new();
    let mut chosen = None;
    for path in candidates {
        match prepare(&path, &temp.0) {
            Ok(()) => {
                chosen = Some(path);
                break;
            }
            Err(why) => {
                tracing::warn!(backup = %path.display(), %why, "backup skipped");
                let _ = std::fs::remove_file(&temp.0);
                skipped.push((path, why));
            }
        }
    }
    let Some(backup) = chosen else {
        return Err(RestoreError::NoBackup {
            database: db.name.clone(),
            skipped,
        });
    };
    // Decompressing took time: look again before touching anything.
    refuse_if_open(&db.path, force)?;
    let bytes = std::fs::metadata(&temp.0)
        .map_err(io("reading", &temp.0))?
        .len();
    let was_wal = journal_is_wal(&db.path);
    if let Ok(meta) = std::fs::metadata(&db.path) {
        copy_ownership(&temp.0, &meta).map_err(io("setting the owner of", &temp.0))?;
    }

    let moved_aside = move_aside(&db.path, &aside)?;
    if let Err(e) = std::fs::rename(&temp.0, &db.path) {
        put_back(&db.path, &moved_aside);
        return Err(io("renaming into place", &db.path)(e));
    }
    sync_parent(&db.path).map_err(io("syncing the folder of", &db.path))?;
    if let Err(why) = final_check(&db.path, was_wal) {
        let _ = std::fs::remove_file(&db.path);
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(&db.path, side));
        }
        put_back(&db.path, &moved_aside);
        return Err(RestoreError::RolledBack(why));
    }
    tracing::info!(database = %db.name, backup = %backup.display(), "database restored");
    Ok(RestoreReport {
        backup,
        skipped,
        moved_aside: moved_aside.into_iter().map(|(_, to)| to).collect(),
        bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The backups to try, in order.
fn candidates(db: &DatabaseConfig, choice: RestoreChoice) -> Result<Vec<PathBuf>, RestoreError> {
    if let RestoreChoice::File(path) = &choice {
        let in_dir = db.backup.as_ref().map(|b| b.dir.join(path));
        return Ok(vec![match in_dir {
            Some(p) if !path.exists() && p.exists() => p,
            _ => path.clone(),
        }]);
    }
    let all = list_backups(db)?;
    Ok(all
        .into_iter()
        .filter(|b| match choice {
            RestoreChoice::Before(t) => b.taken < t,
            _ => true,
        })
        .map(|b| b.path)
        .collect())
}

/// Checksum, decompression into `temp`, and `integrity_check` there.
fn prepare(backup: &Path, temp: &Path) -> Result<(), String> {
    match checksum_matches(backup, &sidecar_of(backup)) {
        Ok(true) => {}
        Ok(false) => return Err("checksum does not match its .sha256".into()),
        Err(e) => return Err(format!("cannot check its checksum: {e}")),
    }
    decompress(backup, temp, far_future()).map_err(|e| format!("cannot decompress: {e}"))?;
    check_database_file(temp, IntegrityMode::Full, far_future())
}

/// Renames the database and its `-wal`/`-shm` to `<aside>`, `<aside>-wal`,
/// `<aside>-shm` (so the set still opens as a database). Returns the moves.
fn move_aside(db: &Path, aside: &Path) -> Result<Vec<(PathBuf, PathBuf)>, RestoreError> {
    let mut moved = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let from = with_suffix(db, suffix);
        let to = with_suffix(aside, suffix);
        match std::fs::rename(&from, &to) {
            Ok(()) => moved.push((from, to)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                put_back(db, &moved);
                return Err(io("moving aside", &from)(e));
            }
        }
    }
    Ok(moved)
}

fn put_back(db: &Path, moved: &[(PathBuf, PathBuf)]) {
    for (from, to) in moved.iter().rev() {
        if let Err(e) = std::fs::rename(to, from) {
            tracing::error!(file = %to.display(), error = %e, "could not put the previous database back");
        }
    }
    let _ = sync_parent(db);
}

/// Checks the file now in place with a read-write connection (which removes
/// its own `-wal`/`-shm` on close), and gives it back WAL mode if the previous
/// database had it: backup copies are stored in rollback mode.
fn final_check(path: &Path, wal: bool) -> Result<(), String> {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(|e| e.to_string())?;
    let found = problems(&conn, IntegrityMode::Quick).map_err(|e| e.to_string())?;
    if found != ["ok"] {
        return Err(found.join("; "));
    }
    if wal {
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        if mode != "wal" {
            return Err(format!("journal mode stayed {mode}"));
        }
    }
    conn.close().map_err(|(_, e)| e.to_string())
}

/// Byte 18 of the header is 2 for WAL databases.
fn journal_is_wal(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header[18] == 2)
}

fn copy_ownership(path: &Path, like: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    std::fs::set_permissions(path, like.permissions())?;
    let now = std::fs::metadata(path)?;
    if (now.uid(), now.gid()) == (like.uid(), like.gid()) {
        return Ok(());
    }
    // Only root may give a file away; anyone else restores as themselves.
    match std::os::unix::fs::chown(path, Some(like.uid()), Some(like.gid())) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            tracing::warn!(file = %path.display(), "cannot give the restored file the previous owner");
            Ok(())
        }
        other => other,
    }
}

/// Refuses while another process has `db` (or its `-wal`) open.
fn refuse_if_open(db: &Path, force: bool) -> Result<(), RestoreError> {
    let holders = holders_of(db);
    if holders.is_empty() || force {
        if !holders.is_empty() {
            tracing::warn!(database = %db.display(), holders = %holders_text(&holders), "restoring anyway (forced)");
        }
        return Ok(());
    }
    Err(RestoreError::InUse {
        path: db.to_path_buf(),
        holders,
    })
}

/// Processes other than this one with a descriptor on `db` or its `-wal`,
/// from `/proc/*/fd` (only processes we may inspect are seen).
pub fn holders_of(db: &Path) -> Vec<Holder> {
    let canonical = |p: &Path| -> Option<PathBuf> {
        let parent = p.parent()?.canonicalize().ok()?;
        Some(parent.join(p.file_name()?))
    };
    let targets: Vec<PathBuf> = [db.to_path_buf(), with_suffix(db, "-wal")]
        .iter()
        .filter_map(|p| canonical(p))
        .collect();
    let me = std::process::id();
    let mut holders = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return holders;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|link| targets.contains(&link));
        if holds {
            let command = std::fs::read_to_string(entry.path().join("comm"))
                .map_or_else(|_| "?".into(), |c| c.trim().to_string());
            holders.push(Holder { pid, command });
        }
    }
    holders
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(parent)?.sync_all()
}
