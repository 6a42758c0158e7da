//! SQLite's own consistency checks, on a long interval.
//!
//! The check itself lives in [`crate::store::integrity`] (the
//! `integrity_check` action runs it too); this collector runs it on its
//! schedule and turns the report into figures.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use super::{CollectError, Collector};
use crate::config::IntegrityMode;
use crate::metrics::{unix_seconds, MetricSet};
use crate::store::integrity::check;
/// Where the responder finds the report it publishes.
pub use crate::store::integrity::IntegrityReport;

pub struct IntegrityCollector {
    name: String,
    path: PathBuf,
    mode: IntegrityMode,
}

impl IntegrityCollector {
    pub fn new(name: &str, path: &Path, mode: IntegrityMode) -> Self {
        Self {
            name: name.to_string(),
            path: path.to_path_buf(),
            mode,
        }
    }
}

/// The exporter's figures for one report, taken at `at`.
pub fn report_metrics(report: &IntegrityReport, at: SystemTime) -> MetricSet {
    let mut set = MetricSet::new();
    set.gauge(
        "caretaker_database_integrity_ok",
        "1 if the last integrity check found no problem",
        vec![],
        if report.ok() { 1.0 } else { 0.0 },
    );
    set.gauge(
        "caretaker_database_integrity_check_timestamp_seconds",
        "When the last integrity check completed",
        vec![],
        unix_seconds(at),
    );
    if let Some(violations) = report.foreign_key_violations {
        set.gauge(
            "caretaker_database_foreign_key_violations",
            "Rows reported by PRAGMA foreign_key_check at the last integrity check",
            vec![],
            violations as f64,
        );
    }
    set
}

impl Collector for IntegrityCollector {
    fn name(&self) -> &'static str {
        "integrity"
    }

    fn collect(&self, deadline: Instant) -> Result<MetricSet, CollectError> {
        let report = check(&self.path, self.mode, deadline)?;
        if !report.ok() {
            tracing::error!(database = %self.name, problems = ?report.problems, "integrity check failed");
        }
        Ok(report_metrics(&report, SystemTime::now()))
    }
}
