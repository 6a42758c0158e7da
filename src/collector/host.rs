//! The host around the databases: CPU, load, memory, and the filesystems that
//! hold the databases and their backups (seed 000's `df` and `free` checks).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use sysinfo::System;

use super::{CollectError, Collector};
use crate::metrics::MetricSet;
use crate::store::space::{containing, mounts};

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
