//! SQLite's own consistency checks, on a long interval.
//!
//! `integrity_check` reads every page of the database (about 14 s for 1.3 GB
//! here), so it runs hours apart, on a read-only connection that does not
//! block the application's writers. `quick_check` is about ten times faster.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use rusqlite::Connection;

use super::sqlite::open_monitor;
use super::{CollectError, Collector};
use crate::config::IntegrityMode;
use crate::metrics::{unix_seconds, MetricSet};

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

/// The outcome of checking one database.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrityReport {
    /// The check's messages; exactly `["ok"]` when the database is sound.
    pub problems: Vec<String>,
    pub foreign_key_violations: u64,
}

impl IntegrityReport {
    pub fn ok(&self) -> bool {
        self.problems.len() == 1 && self.problems[0] == "ok"
    }
}

/// Runs the check on `path`; shared with the `integrity_check` action.
pub fn check(
    path: &Path,
    mode: IntegrityMode,
    deadline: Instant,
) -> rusqlite::Result<IntegrityReport> {
    let conn = open_monitor(path, deadline)?;
    let problems = problems(&conn, mode)?;
    let foreign_key_violations =
        conn.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get::<_, i64>(0)
        })?;
    Ok(IntegrityReport {
        problems,
        foreign_key_violations: u64::try_from(foreign_key_violations).unwrap_or(0),
    })
}

/// Runs `quick_check` or `integrity_check` (at most 100 messages); exactly
/// `["ok"]` when the database is sound. Shared with the backup actions.
pub fn problems(conn: &Connection, mode: IntegrityMode) -> rusqlite::Result<Vec<String>> {
    let pragma = match mode {
        IntegrityMode::Quick => "PRAGMA quick_check(100)",
        IntegrityMode::Full => "PRAGMA integrity_check(100)",
    };
    let mut stmt = conn.prepare(pragma)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
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
    set.gauge(
        "caretaker_database_foreign_key_violations",
        "Rows reported by PRAGMA foreign_key_check at the last integrity check",
        vec![],
        report.foreign_key_violations as f64,
    );
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
