//! The database's folder, held open: every step of a restore that writes
//! there goes through this descriptor, by name relative to it, never
//! following a symlink.
//!
//! That folder is writable by the agents whose database it holds, and a
//! restore often runs as root. Whatever is done there by path can be
//! redirected between two steps: a `chmod` of `.memory.db.restore.tmp` after
//! an agent swapped it for a symlink changes the link's target instead. So the
//! temporary file is created here (`O_EXCL | O_NOFOLLOW`), written, and given
//! its mode and owner through the descriptor that wrote it, and a name is
//! trusted to hold that file only after its [`Identity`] was compared.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

/// A file's device and inode: what a name must still lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    pub(super) fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// An open folder, and the path it was opened by (for messages and for
/// SQLite, which only takes paths).
pub(super) struct Folder {
    fd: OwnedFd,
    path: PathBuf,
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

impl Folder {
    pub(super) fn open(path: &Path) -> io::Result<Folder> {
        let fd = rustix::fs::open(path, dir_flags(), Mode::empty())?;
        Ok(Folder {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// Creates `name` with mode 0600; fails if anything, a symlink
    /// included, already has that name.
    pub(super) fn create_new(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let fd = rustix::fs::openat(&self.fd, name, flags | OFlags::CLOEXEC, 0o600.into())?;
        Ok(File::from(fd))
    }

    /// Opens `name` for reading; a symlink is refused.
    pub(super) fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(File::from(rustix::fs::openat(
            &self.fd,
            name,
            flags,
            Mode::empty(),
        )?))
    }

    /// What `name` is (a symlink itself, not its target), or `None` when
    /// nothing has that name.
    pub(super) fn metadata(&self, name: &OsStr) -> io::Result<Option<Metadata>> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(File::from(fd).metadata()?)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `name` is the file `id`.
    pub(super) fn holds(&self, name: &OsStr, id: Identity) -> io::Result<bool> {
        Ok(self
            .metadata(name)?
            .is_some_and(|m| !m.file_type().is_symlink() && Identity::of(&m) == id))
    }

    /// Removes `name` (a symlink itself, never its target); a missing name
    /// is fine.
    pub(super) fn remove(&self, name: &OsStr) -> io::Result<()> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Renames `from` here to `to` in `into` (which may be this folder).
    pub(super) fn rename(&self, from: &OsStr, into: &Folder, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &into.fd, to)?)
    }

    /// Makes the renames and creations in this folder durable.
    pub(super) fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// Creates the folder `name` (mode 0700) and opens it.
    pub(super) fn create_folder(&self, name: &OsStr) -> io::Result<Folder> {
        rustix::fs::mkdirat(&self.fd, name, 0o700.into())?;
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            dir_flags() | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(Folder {
            fd,
            path: self.join(name),
        })
    }

    /// Removes the empty folder `name`.
    pub(super) fn remove_folder(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }
}

/// Gives `file` the mode, and when we may the owner, of `like`, through its
/// descriptor: whatever its name now leads to is left alone.
pub(super) fn copy_ownership(file: &File, like: &Metadata) -> io::Result<()> {
    rustix::fs::fchmod(file, Mode::from_raw_mode(like.mode()))?;
    let now = file.metadata()?;
    if (now.uid(), now.gid()) == (like.uid(), like.gid()) {
        return Ok(());
    }
    let owner = rustix::fs::Uid::from_raw(like.uid());
    let group = rustix::fs::Gid::from_raw(like.gid());
    // Only root may give a file away; anyone else restores as themselves.
    match rustix::fs::fchown(file, Some(owner), Some(group)) {
        Err(Errno::PERM) => {
            tracing::warn!("cannot give the restored file the previous owner");
            Ok(())
        }
        other => Ok(other?),
    }
}

/// `name` followed by `suffix` (`memory.db` and `-wal`).
pub(super) fn suffixed(name: &OsStr, suffix: &str) -> OsString {
    let mut s = name.to_owned();
    s.push(suffix);
    s
}
