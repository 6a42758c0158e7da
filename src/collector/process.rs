//! caretaker's own footprint, so its users can hold it to its budget.

use std::sync::Mutex;
use std::time::Instant;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::{CollectError, Collector};
use crate::metrics::MetricSet;

pub struct ProcessCollector {
    system: Mutex<System>,
    pid: Pid,
}

impl ProcessCollector {
    pub fn new() -> Result<Self, CollectError> {
        let pid = sysinfo::get_current_pid().map_err(|e| CollectError::Other(e.to_string()))?;
        Ok(Self {
            system: Mutex::new(System::new()),
            pid,
        })
    }
}

impl Collector for ProcessCollector {
    fn name(&self) -> &'static str {
        "process"
    }

    fn collect(&self, _deadline: Instant) -> Result<MetricSet, CollectError> {
        let mut sys = self.system.lock().unwrap_or_else(|e| e.into_inner());
        let refresh = ProcessRefreshKind::nothing().with_memory().with_cpu();
        sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[self.pid]), true, refresh);
        let process = sys
            .process(self.pid)
            .ok_or_else(|| CollectError::Other("own process not found".into()))?;
        let mut set = MetricSet::new();
        set.gauge(
            "caretaker_process_resident_memory_bytes",
            "Resident memory of the caretaker process",
            vec![],
            process.memory() as f64,
        );
        set.gauge(
            "caretaker_process_start_time_seconds",
            "When the caretaker process started, as a Unix timestamp",
            vec![],
            process.start_time() as f64,
        );
        Ok(set)
    }
}
