//! Files and folders caretaker creates are private to its user.
//!
//! Backups, their sidecars, archives of deleted rows and the state database
//! hold the application's data: they are as sensitive as the database
//! itself, whatever its own mode. The usual umask (022) would make them
//! world-readable, so every file is created 0600 and every folder 0700 at
//! creation, then set again on the descriptor (a stricter umask can only
//! take bits away, and a file that cannot be written would be useless).
//! Links are never followed when a file is created: a planted link cannot
//! make caretaker create or truncate a file elsewhere.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of every file caretaker creates.
pub const FILE_MODE: u32 = 0o600;

/// The mode of every folder caretaker creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `path`, which must not exist, for writing, mode 0600.
pub fn create_new(path: &Path) -> io::Result<File> {
    open(path, OpenOptions::new().write(true).create_new(true))
}

/// Opens `path` for writing, creating it 0600 if missing (never truncating);
/// refuses a symbolic link (`ELOOP`). An existing file is left as it is.
pub fn open_or_create(path: &Path) -> io::Result<File> {
    let existed = path.exists();
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    options.mode(FILE_MODE).custom_flags(libc::O_NOFOLLOW);
    let file = options.open(path)?;
    if !existed {
        restrict(&file)?;
    }
    Ok(file)
}

fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = options
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    restrict(&file)?;
    Ok(file)
}

/// Sets 0600 on an open file, through its descriptor (no race with a rename).
pub fn restrict(file: &File) -> io::Result<()> {
    file.set_permissions(Permissions::from_mode(FILE_MODE))
}

/// Creates `dir` and its missing parents, each 0700; folders that already
/// exist keep their mode (a folder a person made is theirs to set).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)),
        // Another run created it in between: it is there, as wanted.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// True when `e` is the error of refusing to follow a link.
pub fn is_link_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_0600_folders_0700_and_links_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = dir.path().join("a/b");
        create_dir_all(&made).expect("mkdir");
        create_new(&made.join("f")).expect("create");
        for (path, mode) in [
            (dir.path().join("a"), DIR_MODE),
            (made.clone(), DIR_MODE),
            (made.join("f"), FILE_MODE),
        ] {
            let m = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(m & 0o777, mode, "{}", path.display());
        }
        let target = dir.path().join("target");
        std::os::unix::fs::symlink(&target, dir.path().join("link")).expect("symlink");
        let e = open_or_create(&dir.path().join("link")).expect_err("a link");
        assert!(is_link_refusal(&e), "{e}");
        assert!(!target.exists());
    }
}
