//! Putting a backup back in place of a database: seed 001's recovery
//! procedure, with its gaps closed.
//!
//! The runbook decompresses straight over the live file and checks afterwards.
//! Here every step is reversible until the end: the chosen backup's checksum
//! is verified, it is decompressed to a hidden file beside the database and
//! `integrity_check`ed there; only then are the current file, its `-wal` and
//! its `-shm` moved together into a folder of their own,
//! `<db>.before-restore-<UTC time>/`, and the restored one renamed into
//! place. A final check failing puts the old files back. While another
//! process has the database open the restore is refused (its writes would go
//! to a file that no longer has a name), unless forced.
//!
//! The three files are one database: the `-wal` holds committed rows the
//! main file does not have yet, and SQLite pairs them by name. So they are
//! never separated (a kept copy opens as `<folder>/<db>`), each restore keeps
//! its own folder instead of refusing while an earlier one is there, and a
//! leftover `-wal` can never meet a different database.
//!
//! A symlinked database path is followed once, at the start: the restore
//! writes the file the link leads to, beside its own `-wal` (where SQLite
//! keeps it), and the link stays. Replacing the link by a plain file would
//! leave the real database with the old data and every reader of the link on
//! a copy. From then on every write in the database's folder goes through a
//! descriptor of it, without following symlinks (see `place.rs`): the agents
//! can write that folder, and a restore often runs as root.
//!
//! The CLI (`caretaker restore`, `caretaker backups list`) calls [`restore`]
//! and [`list_backups`]; nothing here prints.

mod holders;
mod place;
mod point;
mod steps;
mod table;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{BackupSet, DatabaseBackup};
use crate::config::DatabaseConfig;
use crate::progress::Reporter;
pub use holders::{holders_of, Holder};
use place::{Folder, Identity};
use steps::{
    confirm_in_place, final_check, journal_is_wal, move_aside, prepare, put_back,
    rename_into_place, Temporary,
};
pub use table::{restore_table, TableMode, TableRestoreReport};

/// Which backup to restore.
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreChoice {
    /// The newest backup that verifies.
    Newest,
    /// This file (relative names are looked up in the backup folder).
    File(PathBuf),
    /// The newest backup that verifies taken strictly before this time.
    Before(SystemTime),
    /// The newest state a chain (full backup and deltas) took at or
    /// before this time.
    At(SystemTime),
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreReport {
    /// The backup now in place.
    pub backup: PathBuf,
    /// Newer candidates passed over, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Where the previous database and its `-wal`/`-shm` went (one folder),
    /// if there was one.
    pub moved_aside: Vec<PathBuf>,
    /// Size of the restored database.
    pub bytes: u64,
    /// With [`RestoreChoice::At`]: when the restored state was taken.
    pub taken: Option<SystemTime>,
    pub seconds: f64,
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
    #[error("nothing of {database} was taken at or before {at}")]
    NoPoint { database: String, at: String },
    /// A chain cannot give the state asked for; the message names the link.
    #[error("{0}")]
    Chain(String),
    #[error("{} is open in {}; stop them first, or force the restore", .path.display(), holders::holders_text(.holders))]
    InUse { path: PathBuf, holders: Vec<Holder> },
    #[error("{} is a symlink to a missing file; point it at the database, or configure the real path", .0.display())]
    DanglingLink(PathBuf),
    #[error("{} was replaced by another process while the restore ran; nothing was changed", .0.display())]
    Replaced(PathBuf),
    #[error("the restore was undone and the previous database put back: {0}")]
    RolledBack(String),
    /// A one-table restore refused or rolled back; the database is unchanged.
    #[error("{0}; nothing was changed")]
    Table(String),
    // The cause is part of the message, not a `source()`: `main` prints the
    // chain, which would say it twice.
    #[error("{action} {}: {error}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
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

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError {
    let path = path.to_path_buf();
    move |error| RestoreError::Io {
        action,
        path,
        error,
    }
}

/// No deadline for an operator's restore, but the shared helpers want one.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 86_400)
}

/// The database's backups, newest first, with whether each checksum matches.
pub fn list_backups(db: &DatabaseConfig) -> Result<Vec<DatabaseBackup>, RestoreError> {
    let set = BackupSet::of(db).ok_or_else(|| RestoreError::NotConfigured(db.name.clone()))?;
    set.list(far_future()).map_err(io("listing", set.dir()))
}

/// Options of [`restore_with`]: test seams (plain fields, empty in
/// production) and where progress is shown.
#[derive(Default)]
pub struct RestoreSeams<'a> {
    /// Called with the temporary file's path once its integrity check
    /// passed, before its mode and owner are set.
    pub after_check: Option<&'a dyn Fn(&Path)>,
    /// Where the decompression and the check are shown (`caretaker restore`).
    pub progress: Reporter,
}

/// Restores `db` from the chosen backup. Refuses while another process has
/// the database open, unless `force`.
pub fn restore(
    db: &DatabaseConfig,
    choice: RestoreChoice,
    force: bool,
) -> Result<RestoreReport, RestoreError> {
    restore_with(db, choice, force, &RestoreSeams::default())
}

/// [`restore`], with test seams.
pub fn restore_with(
    db: &DatabaseConfig,
    choice: RestoreChoice,
    force: bool,
    seams: &RestoreSeams<'_>,
) -> Result<RestoreReport, RestoreError> {
    let started = Instant::now();
    let (folder_path, name) = real_location(&db.path)?;
    let real = folder_path.join(&name);
    if real != db.path {
        tracing::info!(database = %db.name, path = %real.display(), "restoring the file the configured path leads to");
    }
    holders::refuse_if_open(&real, force)?;
    let folder = Folder::open(&folder_path).map_err(io("opening", &folder_path))?;
    let mut temp_name = OsString::from(".");
    temp_name.push(&name);
    temp_name.push(".restore.tmp");
    let temp = Temporary {
        folder: &folder,
        name: &temp_name,
    };
    let temp_path = folder.join(&temp_name);
    // Left by a crash; unlinking a name never touches what a link leads to.
    folder
        .remove(&temp_name)
        .map_err(io("removing", &temp_path))?;
    let Chosen {
        backup,
        file,
        skipped,
        taken,
    } = choose(db, &folder, &temp_name, choice, &seams.progress)?;
    if let Some(hook) = seams.after_check {
        hook(&temp_path);
    }
    // Decompressing took time: look again before touching anything.
    holders::refuse_if_open(&real, force)?;
    let meta = file.metadata().map_err(io("reading", &temp_path))?;
    let (ours, bytes) = (Identity::of(&meta), meta.len());
    let previous = folder.metadata(&name).map_err(io("reading", &real))?;
    if previous
        .as_ref()
        .is_some_and(|m| m.file_type().is_symlink())
    {
        return Err(RestoreError::Replaced(real));
    }
    let was_wal = previous.is_some() && journal_is_wal(&folder, &name);
    if let Some(like) = &previous {
        place::copy_ownership(&file, like).map_err(io("setting the owner of", &temp_path))?;
    }

    let aside = move_aside(&folder, &name)?;
    if let Err(e) = rename_into_place(&folder, &temp_name, &name, ours) {
        put_back(&folder, &name, aside.as_ref(), false);
        return Err(e);
    }
    temp.keep();
    if let Err(e) = confirm_in_place(&folder, &name, ours) {
        put_back(&folder, &name, aside.as_ref(), true);
        return Err(RestoreError::RolledBack(e.to_string()));
    }
    if let Err(why) = final_check(&real, was_wal) {
        put_back(&folder, &name, aside.as_ref(), true);
        return Err(RestoreError::RolledBack(format!(
            "the restored database failed its final check ({why})"
        )));
    }
    tracing::info!(database = %db.name, backup = %backup.display(), "database restored");
    Ok(RestoreReport {
        backup,
        skipped,
        moved_aside: aside.map_or_else(Vec::new, |a| {
            a.moved.iter().map(|n| a.folder.join(n)).collect()
        }),
        bytes,
        taken,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Backups passed over, with the reason.
type Skipped = Vec<(PathBuf, String)>;

/// The state [`choose`] found, decompressed (or rebuilt) and checked.
struct Chosen {
    /// The backup, or with [`RestoreChoice::At`] the last link applied.
    backup: PathBuf,
    file: std::fs::File,
    skipped: Skipped,
    /// With [`RestoreChoice::At`]: when that state was taken.
    taken: Option<SystemTime>,
}

/// The state `choice` names, decompressed into `temp_name` in `folder` and
/// checked: with [`RestoreChoice::At`] a chain rebuilt to that moment (a
/// broken link refuses); otherwise the first candidate whose checksum and
/// integrity check pass, with the newer ones passed over and why. Shared by
/// the whole-database and the one-table restore.
fn choose(
    db: &DatabaseConfig,
    folder: &Folder,
    temp_name: &OsStr,
    choice: RestoreChoice,
    progress: &Reporter,
) -> Result<Chosen, RestoreError> {
    if let RestoreChoice::At(at) = choice {
        let (backup, taken, file) = point::prepare_point(db, at, folder, temp_name, progress)?;
        return Ok(Chosen {
            backup,
            file,
            skipped: Vec::new(),
            taken: Some(taken),
        });
    }
    let temp_path = folder.join(temp_name);
    let mut skipped = Vec::new();
    for path in candidates(db, choice)? {
        match prepare(&path, folder, temp_name, progress)? {
            Ok(file) => {
                return Ok(Chosen {
                    backup: path,
                    file,
                    skipped,
                    taken: None,
                })
            }
            Err(why) => {
                tracing::warn!(backup = %path.display(), %why, "backup skipped");
                folder
                    .remove(temp_name)
                    .map_err(io("removing", &temp_path))?;
                skipped.push((path, why));
            }
        }
    }
    Err(RestoreError::NoBackup {
        database: db.name.clone(),
        skipped,
    })
}

/// The folder and name of the file `path` leads to, every symlink resolved.
/// A missing database is restored under its configured name.
fn real_location(path: &Path) -> Result<(PathBuf, OsString), RestoreError> {
    let real = match path.canonicalize() {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if path.symlink_metadata().is_ok() {
                return Err(RestoreError::DanglingLink(path.to_path_buf()));
            }
            let folder = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let folder = folder
                .canonicalize()
                .map_err(io("finding the folder of", path))?;
            folder.join(path.file_name().unwrap_or_default())
        }
        Err(e) => return Err(io("resolving", path)(e)),
    };
    match (real.parent(), real.file_name()) {
        (Some(folder), Some(name)) => Ok((folder.to_path_buf(), name.to_owned())),
        _ => Err(io("resolving", path)(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path names no file",
        ))),
    }
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
