//! What some actions' outcomes add to `/metrics`, so that a check run by the
//! responder is as visible as one run by a collector.
//!
//! `integrity_check` replaces the integrity collector's figures;
//! `verify_backups` publishes whether the newest backups verified.

use std::time::SystemTime;

use crate::collector::integrity::{report_metrics, IntegrityReport};
use crate::metrics::{unix_seconds, MetricSet, SourceKey};
use crate::responder::state::JobRecord;

/// Where a job's figures go: a collector's own source, or an action's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Replace the named collector's figures (and count as its run).
    Collector,
    /// Figures of an action, without collector health.
    Action,
}

/// The source and figures a finished job publishes, if any.
pub fn metrics_of(job: &JobRecord, now: SystemTime) -> Option<(Target, SourceKey, MetricSet)> {
    let figure = |name: &str| {
        job.outcome
            .as_ref()
            .and_then(|o| o["figures"][name].as_f64())
    };
    let (target, source, mut set) = match (job.action.as_str(), job.status.as_str()) {
        ("integrity_check", "succeeded") => {
            let ok = figure("integrity_ok").is_some_and(|v| v >= 1.0);
            let report = IntegrityReport {
                problems: if ok {
                    vec![]
                } else {
                    vec!["failed".to_string()]
                },
                foreign_key_violations: figure("foreign_key_violations").map(|v| v as u64),
            };
            (Target::Collector, "integrity", report_metrics(&report, now))
        }
        ("verify_backups", "succeeded" | "failed") => {
            let mut set = MetricSet::new();
            set.gauge(
                "caretaker_backup_verification_ok",
                "1 if the last verify_backups found every checked backup sound",
                vec![],
                if job.status == "succeeded" { 1.0 } else { 0.0 },
            );
            set.gauge(
                "caretaker_backup_verification_timestamp_seconds",
                "When verify_backups last ran",
                vec![],
                unix_seconds(now),
            );
            (Target::Action, "verify_backups", set)
        }
        _ => return None,
    };
    set.prefix_label("database", &job.database);
    Some((target, SourceKey::new(source, Some(&job.database)), set))
}
