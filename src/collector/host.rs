//! The host around the databases: CPU, load, memory, and the filesystems that
//! hold the databases and their backups (seed 000's `df` and `free` checks).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use sysinfo::{Disks, System};

use super::{CollectError, Collector};
use crate::metrics::MetricSet;

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
fn mounts() -> Vec<Filesystem> {
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

pub struct HostCollector {
    system: Mutex<System>,
    /// Paths whose filesystems are reported (database folders, backup folders, configured extras).
    paths: Vec<PathBuf>,
}

impl HostCollector {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let mut system = System::new();
        // CPU usage is a difference between two refreshes: take the first now.
        system.refresh_cpu_usage();
        Self {
            system: Mutex::new(system),
            paths,
        }
    }
}

impl Collector for HostCollector {
    fn name(&self) -> &'static str {
        "host"
    }

    fn collect(&self, _deadline: Instant) -> Result<MetricSet, CollectError> {
        let mut set = MetricSet::new();
        {
            let mut sys = self.system.lock().unwrap_or_else(|e| e.into_inner());
            sys.refresh_cpu_usage();
            sys.refresh_memory();
            set.gauge(
                "caretaker_host_cpu_usage_ratio",
                "Share of CPU time in use across all cores since the last collection (0 to 1)",
                vec![],
                f64::from(sys.global_cpu_usage()) / 100.0,
            );
            set.gauge(
                "caretaker_host_memory_total_bytes",
                "Total memory",
                vec![],
                sys.total_memory() as f64,
            );
            set.gauge(
                "caretaker_host_memory_available_bytes",
                "Memory available for new work without swapping",
                vec![],
                sys.available_memory() as f64,
            );
            set.gauge(
                "caretaker_host_cpus",
                "Logical CPUs",
                vec![],
                sys.cpus().len() as f64,
            );
        }
        let load = System::load_average();
        set.gauge(
            "caretaker_host_load1",
            "Load average over 1 minute",
            vec![],
            load.one,
        );
        set.gauge(
            "caretaker_host_load5",
            "Load average over 5 minutes",
            vec![],
            load.five,
        );
        set.gauge(
            "caretaker_host_load15",
            "Load average over 15 minutes",
            vec![],
            load.fifteen,
        );

        let mounts = mounts();
        let mut seen: Vec<PathBuf> = Vec::new();
        for fs in self.paths.iter().filter_map(|p| containing(&mounts, p)) {
            if seen.contains(&fs.mountpoint) {
                continue;
            }
            let labels = vec![("mountpoint", fs.mountpoint.display().to_string())];
            set.gauge(
                "caretaker_host_filesystem_size_bytes",
                "Size of a filesystem holding caretaker's data",
                labels.clone(),
                fs.size as f64,
            );
            set.gauge(
                "caretaker_host_filesystem_avail_bytes",
                "Space available on a filesystem holding caretaker's data",
                labels,
                fs.avail as f64,
            );
            seen.push(fs.mountpoint);
        }
        Ok(set)
    }
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
