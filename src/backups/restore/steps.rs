//! The steps of a restore that touch the database's folder, in the order
//! [`super::restore_with`] runs them, each undone by the next failure.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::Path;
use std::time::SystemTime;

use super::place::{suffixed, Folder, Identity};
use super::{far_future, io, RestoreError};
use crate::backups::sidecar::{checksum_matches, sidecar_of};
use crate::backups::verify::{check_database_file, decompress_into, file_name};
use crate::config::IntegrityMode;
use crate::progress::Reporter;
use crate::store::integrity::problems;

/// The temporary file, removed by name when dropped unless kept.
pub(super) struct Temporary<'a> {
    pub(super) folder: &'a Folder,
    pub(super) name: &'a OsStr,
}

impl Temporary<'_> {
    pub(super) fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Temporary<'_> {
    fn drop(&mut self) {
        let _ = self.folder.remove(self.name);
    }
}

/// Checksum, decompression into a new `temp`, and `integrity_check` there.
/// The inner error skips this backup; the outer one stops the restore.
pub(super) fn prepare(
    backup: &Path,
    folder: &Folder,
    temp: &OsStr,
    progress: &Reporter,
) -> Result<Result<File, String>, RestoreError> {
    match checksum_matches(backup, &sidecar_of(backup)) {
        Ok(true) => {}
        Ok(false) => return Ok(Err("checksum does not match its .sha256".into())),
        Err(e) => return Ok(Err(format!("cannot check its checksum: {e}"))),
    }
    let path = folder.join(temp);
    let mut file = folder.create_new(temp).map_err(io("creating", &path))?;
    if let Err(e) = decompress_into(backup, &mut file, far_future(), progress) {
        return Ok(Err(format!("cannot decompress: {e}")));
    }
    let ours = Identity::of(&file.metadata().map_err(io("reading", &path))?);
    // SQLite takes a path: the check counts only if the name held our file
    // before it and still does after.
    let still_ours = || match folder.holds(temp, ours) {
        Ok(true) => Ok(()),
        Ok(false) => Err(RestoreError::Replaced(path.clone())),
        Err(e) => Err(io("reading", &path)(e)),
    };
    still_ours()?;
    let shown = progress.stage(&format!("checking {}", file_name(backup)), None);
    let checked = check_database_file(&path, IntegrityMode::Full, far_future());
    drop(shown);
    still_ours()?;
    Ok(checked.map(|()| file))
}

/// Renames the temporary file `temp`, which must still be the file `ours`,
/// to `name`. On an error nothing of ours has that name.
pub(super) fn rename_into_place(
    folder: &Folder,
    temp: &OsStr,
    name: &OsStr,
    ours: Identity,
) -> Result<(), RestoreError> {
    let temp_path = folder.join(temp);
    if !folder
        .holds(temp, ours)
        .map_err(io("reading", &temp_path))?
    {
        return Err(RestoreError::Replaced(temp_path));
    }
    folder
        .rename(temp, folder, name)
        .map_err(io("renaming into place", &folder.join(name)))
}

/// `name` holds the file `ours` (nobody swapped it since the rename), and
/// the rename is durable.
pub(super) fn confirm_in_place(
    folder: &Folder,
    name: &OsStr,
    ours: Identity,
) -> Result<(), RestoreError> {
    let path = folder.join(name);
    if !folder.holds(name, ours).map_err(io("reading", &path))? {
        return Err(RestoreError::Replaced(path));
    }
    folder.sync().map_err(io("syncing the folder of", &path))
}

/// The folder an earlier database was moved into, and what it holds.
pub(super) struct Aside {
    pub(super) folder: Folder,
    pub(super) name: OsString,
    pub(super) moved: Vec<OsString>,
}

/// Moves the database and its `-wal`/`-shm` together into a new folder
/// `<name>.before-restore-<UTC time>` beside them, keeping their names (so
/// the set still opens as a database there). `None` when there was no file.
pub(super) fn move_aside(folder: &Folder, name: &OsStr) -> Result<Option<Aside>, RestoreError> {
    let mut present = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let file = suffixed(name, suffix);
        let meta = folder.metadata(&file);
        if meta.map_err(io("reading", &folder.join(&file)))?.is_some() {
            present.push(file);
        }
    }
    if present.is_empty() {
        return Ok(None);
    }
    let stamp = chrono::DateTime::<chrono::Utc>::from(SystemTime::now()).format("%Y%m%dT%H%M%SZ");
    let base = suffixed(name, &format!(".before-restore-{stamp}"));
    let mut aside = None;
    for n in 1..100 {
        let candidate = match n {
            1 => base.clone(),
            n => suffixed(&base, &format!("-{n}")),
        };
        match folder.create_folder(&candidate) {
            Ok(f) => {
                aside = Some(Aside {
                    folder: f,
                    name: candidate,
                    moved: Vec::new(),
                });
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io("creating", &folder.join(&candidate))(e)),
        }
    }
    let Some(mut aside) = aside else {
        return Err(io("creating", &folder.join(&base))(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "no free name for the previous database's folder",
        )));
    };
    for file in present {
        if let Err(e) = folder.rename(&file, &aside.folder, &file) {
            put_back(folder, name, Some(&aside), false);
            return Err(io("moving aside", &folder.join(&file))(e));
        }
        aside.moved.push(file);
    }
    aside
        .folder
        .sync()
        .map_err(io("syncing", aside.folder.path()))?;
    Ok(Some(aside))
}

/// Moves the previous files back, then removes their emptied folder. With
/// `ours_in_place`, first removes the restored file at `name` and the
/// `-wal`/`-shm` its check left (never anything else: agents may have
/// created a database there meanwhile).
pub(super) fn put_back(folder: &Folder, name: &OsStr, aside: Option<&Aside>, ours_in_place: bool) {
    if ours_in_place {
        for suffix in ["", "-wal", "-shm"] {
            let _ = folder.remove(&suffixed(name, suffix));
        }
    }
    if let Some(aside) = aside {
        for file in aside.moved.iter().rev() {
            if let Err(e) = aside.folder.rename(file, folder, file) {
                tracing::error!(file = %aside.folder.join(file).display(), error = %e, "could not put the previous database back");
            }
        }
        let _ = folder.remove_folder(&aside.name);
    }
    let _ = folder.sync();
}

/// Checks the file now in place with a read-write connection (which removes
/// its own `-wal`/`-shm` on close), and gives it back WAL mode if the previous
/// database had it: backup copies are stored in rollback mode.
pub(super) fn final_check(path: &Path, wal: bool) -> Result<(), String> {
    // NOFOLLOW: the name was checked to hold the restored file, a symlink
    // put there since is not followed.
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
        | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
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
pub(super) fn journal_is_wal(folder: &Folder, name: &OsStr) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    folder
        .open_file(name)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header[18] == 2)
}
