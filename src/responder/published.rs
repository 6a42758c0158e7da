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

use crate::actions::kind::ActionKind;
use crate::actions::{Outcome, Report};
use crate::collector::integrity::{report_metrics, IntegrityReport};
use crate::metrics::{unix_seconds, MetricSet, Snapshot, SourceKey};
use crate::responder::job::JobStatus;
use crate::responder::state::{JobRecord, StateStore};

/// The actions whose outcomes [`metrics_of`] turns into figures.
pub const PUBLISHING_ACTIONS: [ActionKind; 2] =
    [ActionKind::IntegrityCheck, ActionKind::VerifyBackups];

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

/// The integrity report a stored job's outcome describes: how a result
/// recorded by another process is read back (in this process the executor
/// hands over the check's own [`Report`]).
pub fn stored_report(job: &JobRecord) -> Option<Report> {
    let figure = |name: &str| {
        job.outcome
            .as_ref()
            .and_then(|o| o["figures"][name].as_f64())
    };
    if job.action.parse::<ActionKind>() != Ok(ActionKind::IntegrityCheck) {
        return None;
    }
    let ok = figure("integrity_ok").is_some_and(|v| v >= 1.0);
    Some(Report::Integrity(IntegrityReport {
        problems: if ok {
            vec![]
        } else {
            vec!["failed".to_string()]
        },
        foreign_key_violations: figure("foreign_key_violations").map(|v| v as u64),
    }))
}

/// The source and figures a finished job publishes, if any, as of `at`,
/// read from its stored outcome.
pub fn metrics_of(job: &JobRecord, at: SystemTime) -> Option<Publication> {
    metrics_with(job, stored_report(job).as_ref(), at)
}

/// The source and figures of a finished job whose check returned `report`.
fn metrics_with(job: &JobRecord, report: Option<&Report>, at: SystemTime) -> Option<Publication> {
    let kind = job.action.parse::<ActionKind>().ok()?;
    let (target, source, stamp, mut set) = match (kind, job.status) {
        (ActionKind::IntegrityCheck, JobStatus::Succeeded) => {
            // A succeeded check always carries its report.
            let Some(Report::Integrity(report)) = report else {
                return None;
            };
            (
                Target::Collector,
                "integrity",
                "caretaker_database_integrity_check_timestamp_seconds",
                report_metrics(report, at),
            )
        }
        (ActionKind::VerifyBackups, status) if status.ran() => {
            let mut set = MetricSet::new();
            set.gauge(
                "caretaker_backup_verification_ok",
                "1 if the last verify_backups found every checked backup sound",
                vec![],
                if job.status == JobStatus::Succeeded {
                    1.0
                } else {
                    0.0
                },
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

/// Shows a finished job's figures in `snapshot`, read from its stored
/// outcome (a job of any process), unless a newer result is already there.
/// Returns whether it was shown.
pub fn publish(snapshot: &Snapshot, job: &JobRecord) -> bool {
    offer(snapshot, job, stored_report(job).as_ref())
}

/// [`publish`] for a job this process just ran: `outcome` is the action's
/// own, typed, so the check's report reaches `/metrics` as computed.
pub fn publish_outcome(snapshot: &Snapshot, job: &JobRecord, outcome: Option<&Outcome>) -> bool {
    offer(snapshot, job, outcome.and_then(|o| o.report.as_ref()))
}

fn offer(snapshot: &Snapshot, job: &JobRecord, report: Option<&Report>) -> bool {
    let Some(finished) = job.finished_at else {
        return false;
    };
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(finished.max(0.0));
    let Some(p) = metrics_with(job, report, at) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responder::job::JobSource;

    fn integrity_job(outcome: Option<serde_json::Value>) -> JobRecord {
        JobRecord {
            id: 1,
            key: "cli/integrity_check".into(),
            source: JobSource::Cli,
            rule: None,
            action: ActionKind::IntegrityCheck.to_string(),
            database: "memory".into(),
            alertname: None,
            fingerprint: None,
            starts_at: None,
            credential: None,
            dry_run: false,
            cooldown_seconds: 0.0,
            labels: None,
            ignore_window: false,
            status: JobStatus::Succeeded,
            reason: None,
            created_at: 10.0,
            started_at: Some(10.0),
            finished_at: Some(11.0),
            outcome,
            error: None,
            resolved_at: None,
        }
    }

    fn shown(snapshot: &Snapshot, name: &str) -> Option<f64> {
        let key = SourceKey::new("integrity", Some("memory"));
        snapshot.value(&key, name, &[("database", "memory")])
    }

    /// A check this process ran reaches `/metrics` as the check computed it,
    /// whatever its stored JSON says.
    #[test]
    fn the_typed_report_is_published_as_computed() {
        let stored = serde_json::json!({ "summary": "passed", "figures": { "integrity_ok": 1.0 } });
        let job = integrity_job(Some(stored));
        let report = IntegrityReport {
            problems: vec!["page 7: btree damaged".into()],
            foreign_key_violations: Some(3),
        };
        let outcome = Outcome::new("found problems").report(Report::Integrity(report));
        let snapshot = Snapshot::new();
        assert!(publish_outcome(&snapshot, &job, Some(&outcome)));
        assert_eq!(
            shown(&snapshot, "caretaker_database_integrity_ok"),
            Some(0.0)
        );
        assert_eq!(
            shown(&snapshot, "caretaker_database_foreign_key_violations"),
            Some(3.0)
        );
    }

    /// A check another process ran is read back from its stored figures.
    #[test]
    fn a_stored_result_is_read_back_from_its_figures() {
        let stored = serde_json::json!({
            "summary": "passed",
            "figures": { "integrity_ok": 1.0, "foreign_key_violations": 0.0 }
        });
        let snapshot = Snapshot::new();
        assert!(publish(&snapshot, &integrity_job(Some(stored))));
        assert_eq!(
            shown(&snapshot, "caretaker_database_integrity_ok"),
            Some(1.0)
        );
        assert_eq!(
            shown(&snapshot, "caretaker_database_foreign_key_violations"),
            Some(0.0)
        );
    }
}
