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

/// The filesystem holding `path`: the mount point that is its longest prefix.
/// A path that does not exist yet is looked up through its nearest ancestor.
pub fn filesystem_of(path: &Path) -> Option<Filesystem> {
    containing(&mounts(), path)
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

/// Pure part of [`filesystem_of`], for tests.
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
}
