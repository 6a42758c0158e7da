//! How much room a filesystem has: the host collector reports it, and the
//! actions that write large files (vacuum, backup) refuse to start without it.

use std::path::{Path, PathBuf};

use sysinfo::Disks;

/// Size and free space of one mounted filesystem.
#[derive(Debug, Clone, PartialEq)]
pub struct Filesystem {
    pub mountpoint: PathBuf,
    pub size: u64,
    pub avail: u64,
}

/// Size and free space of the filesystem holding `path`, from `statvfs` on
/// it: no list of mounts is read (the backups collector asks once per
/// database per pass). A path that does not exist yet is looked up through
/// its nearest ancestor.
pub fn space_of(path: &Path) -> Option<Space> {
    let mut probe = std::path::absolute(path).ok()?;
    loop {
        match rustix::fs::statvfs(&probe) {
            Ok(s) => {
                return Some(Space {
                    size: s.f_blocks.saturating_mul(s.f_frsize),
                    avail: s.f_bavail.saturating_mul(s.f_frsize),
                })
            }
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => {
                probe = probe.parent()?.to_path_buf();
            }
            Err(_) => return None,
        }
    }
}

/// What [`space_of`] tells: bytes in all, and bytes caretaker may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Space {
    pub size: u64,
    pub avail: u64,
}

/// Every mounted filesystem, freshly read.
pub fn mounts() -> Vec<Filesystem> {
    Disks::new_with_refreshed_list()
        .list()
        .iter()
        .map(|d| Filesystem {
            mountpoint: d.mount_point().to_path_buf(),
            size: d.total_space(),
            avail: d.available_space(),
        })
        .collect()
}

/// The mounted filesystem in `mounts` that holds `path`: the mount point that
/// is its longest prefix (the host collector names filesystems by it).
pub fn containing(mounts: &[Filesystem], path: &Path) -> Option<Filesystem> {
    let mut probe = std::path::absolute(path).ok()?;
    while !probe.exists() {
        probe = probe.parent()?.to_path_buf();
    }
    let resolved = probe.canonicalize().unwrap_or(probe);
    mounts
        .iter()
        .filter(|m| resolved.starts_with(&m.mountpoint))
        .max_by_key(|m| m.mountpoint.components().count())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_prefix_wins_and_missing_paths_use_their_ancestor() {
        let fs = |m: &str| Filesystem {
            mountpoint: m.into(),
            size: 1,
            avail: 1,
        };
        let mounts = vec![fs("/"), fs("/tmp")];
        let tmp = std::env::temp_dir().canonicalize().expect("tmp");
        let found = containing(&mounts, &tmp.join("no/such/dir")).expect("found");
        let expect = if tmp.starts_with("/tmp") { "/tmp" } else { "/" };
        assert_eq!(found.mountpoint, Path::new(expect));
    }

    #[test]
    fn space_of_a_path_is_what_the_list_of_mounts_says_of_its_filesystem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("not/yet");
        let listed = containing(&mounts(), dir.path()).expect("listed");
        for path in [dir.path(), missing.as_path()] {
            let space = space_of(path).expect("space");
            assert_eq!(space.size, listed.size, "{}", path.display());
            assert!(space.avail <= space.size);
        }
    }
}
