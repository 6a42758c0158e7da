//! What some actions' outcomes add to `/metrics`, so that a check run by the
//! responder is as visible as one run by a collector.
//!
//! `integrity_check` replaces the integrity collector's figures;
//! `verify_backups` publishes whether the newest backups verified. The state
//! database is shared by every caretaker process, so the daemon also
//! [`follow`]s it: a `caretaker run integrity_check` from a shell reaches the
//! daemon's `/metrics` within one database interval. The newer result wins,
//! whoever computed it (see [`Snapshot::offer`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::collector::integrity::{report_metrics, IntegrityReport};
use crate::metrics::{unix_seconds, MetricSet, Snapshot, SourceKey};
use crate::responder::state::{JobRecord, StateStore};

/// The actions whose outcomes [`metrics_of`] turns into figures.
pub const PUBLISHING_ACTIONS: [&str; 2] = ["integrity_check", "verify_backups"];

/// Where a job's figures go: a collector's own source, or an action's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Replace the named collector's figures (and count as its run).
    Collector,
    /// Figures of an action, without collector health.
    Action,
}

/// What one finished job publishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub target: Target,
    pub source: SourceKey,
    pub set: MetricSet,
    /// The family holding the result's time, which decides which result is newer.
    pub stamp: &'static str,
}

/// The source and figures a finished job publishes, if any, as of `at`.
pub fn metrics_of(job: &JobRecord, at: SystemTime) -> Option<Publication> {
    let figure = |name: &str| {
        job.outcome
            .as_ref()
            .and_then(|o| o["figures"][name].as_f64())
    };
    let (target, source, stamp, mut set) = match (job.action.as_str(), job.status.as_str()) {
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
            (
                Target::Collector,
                "integrity",
                "caretaker_database_integrity_check_timestamp_seconds",
                report_metrics(&report, at),
            )
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
                unix_seconds(at),
            );
            (
                Target::Action,
                "verify_backups",
                "caretaker_backup_verification_timestamp_seconds",
                set,
            )
        }
        _ => return None,
    };
    set.prefix_label("database", &job.database);
    Some(Publication {
        target,
        source: SourceKey::new(source, Some(&job.database)),
        set,
        stamp,
    })
}

/// Shows a finished job's figures in `snapshot`, unless a newer result is
/// already there. Returns whether it was shown.
pub fn publish(snapshot: &Snapshot, job: &JobRecord) -> bool {
    let Some(finished) = job.finished_at else {
        return false;
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(finished.max(0.0));
    let Some(p) = metrics_of(job, at) else {
        return false;
    };
    let run = match p.target {
        Target::Collector => {
            let took = finished - job.started_at.unwrap_or(finished);
            Some((Duration::from_secs_f64(took.max(0.0)), at))
        }
        Target::Action => None,
    };
    snapshot.offer(p.source, p.set, p.stamp, run)
}

/// Publishes, every `interval()`, the results that any process recorded in
/// the state database since the last look (the latest of each action and
/// database; at start, the latest ever), until `cancel` fires.
pub async fn follow(
    state: Arc<StateStore>,
    snapshot: Arc<Snapshot>,
    interval: impl Fn() -> Duration,
    cancel: CancellationToken,
) {
    let mut since = 0.0_f64;
    loop {
        let store = state.clone();
        let after = since;
        match tokio::task::spawn_blocking(move || store.latest_finished(&PUBLISHING_ACTIONS, after))
            .await
        {
            Ok(Ok(jobs)) => {
                for job in &jobs {
                    since = since.max(job.finished_at.unwrap_or(since));
                    publish(&snapshot, job);
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read results from the state database"),
            Err(e) => tracing::warn!(error = %e, "state reading task failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(interval()) => {}
        }
    }
}
