//! Recording a notification: decisions become jobs and audit events in one
//! transaction of the state database, before the webhook answers.
//!
//! What the payload puts into the state database is bounded: alerts no rule
//! matches are counted (`caretaker_alerts_ignored_total`) and summed up in at
//! most one audit row per notification, and stored fingerprints, startsAt
//! values and labels are cut to the sizes in [`bounded`].

use std::time::Duration;

use crate::actions::kind::COMMAND_PREFIX;
use crate::config::Config;
use crate::responder::bounded;
use crate::responder::job::{AuditKind, JobSource, JobStatus, SkipReason};
use crate::responder::metrics::{labels, ResponderMetrics};
use crate::responder::plan::{decide_here, Alert, Decision, Notification};
use crate::responder::state::{AuditEvent, NewJob, Recorded, StateStore};

/// What a notification turned into.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IntakeSummary {
    /// New jobs to queue.
    pub accepted: Vec<i64>,
    pub duplicates: usize,
    pub unmatched: usize,
    pub unknown_database: usize,
    pub resolved: usize,
    /// Alerts whose `instance` names another caretaker.
    pub other_instance: usize,
}

/// Every decision of a notification, alert by alert, for the caretaker
/// that `identities` name (see [`crate::responder::plan::identities`]).
pub fn decisions(
    n: &Notification,
    config: &Config,
    identities: &[String],
) -> Vec<(Alert, Vec<Decision>)> {
    n.alerts
        .iter()
        .map(|a| (a.clone(), decide_here(a, config, identities)))
        .collect()
}

/// How many jobs the decisions may create (the queue room to reserve).
pub fn jobs_needed(planned: &[(Alert, Vec<Decision>)]) -> usize {
    planned
        .iter()
        .flat_map(|(_, d)| d)
        .filter(|d| matches!(d, Decision::Run { .. }))
        .count()
}

/// The credential of every webhook request (the webhook accepts no other).
const WEBHOOK_CREDENTIAL: &str = "webhook_token";

fn event(alert: &Alert, kind: AuditKind, now: f64) -> AuditEvent {
    AuditEvent {
        at: now,
        event: kind,
        alertname: alert.alertname().map(bounded::label_value),
        fingerprint: Some(bounded::fingerprint(&alert.fingerprint())),
        credential: Some(WEBHOOK_CREDENTIAL.into()),
        ..Default::default()
    }
}

/// The allow-listed labels of an alert, as JSON, for `command` actions.
fn command_labels(alert: &Alert, action: &str, config: &Config) -> Option<String> {
    let name = action.strip_prefix(COMMAND_PREFIX)?;
    let spec = config.commands.iter().find(|c| c.name == name)?;
    let kept = bounded::labels(
        alert
            .labels
            .iter()
            .filter(|(k, _)| spec.env_labels.contains(k)),
    );
    serde_json::to_string(&kept).ok()
}

/// Records the planned jobs and every decision; duplicates are audited too.
pub fn record(
    planned: &[(Alert, Vec<Decision>)],
    reason: Option<&str>,
    config: &Config,
    state: &StateStore,
    metrics: &ResponderMetrics,
    now: f64,
) -> rusqlite::Result<IntakeSummary> {
    let Prepared {
        jobs,
        events,
        mut summary,
    } = prepare(planned, config, state, metrics, now)?;
    let recorded = state.record(&jobs, &events, now)?;
    settle(
        planned,
        reason,
        &jobs,
        recorded,
        state,
        metrics,
        now,
        &mut summary,
    )?;
    Ok(summary)
}

/// What an intake writes in its first transaction, and what it found so far.
pub struct Prepared {
    pub jobs: Vec<NewJob>,
    pub events: Vec<AuditEvent>,
    pub summary: IntakeSummary,
}

/// Whether [`prepare`] reads the state database (resolved alerts close their
/// episode there); otherwise it only computes.
pub fn prepare_reads_state(planned: &[(Alert, Vec<Decision>)]) -> bool {
    planned
        .iter()
        .any(|(_, ds)| ds.iter().any(|d| matches!(d, Decision::Resolved)))
}

/// Whether [`settle`] reads or writes the state database: only when some
/// job was already recorded (duplicates are audited, repeats retried).
pub fn settle_touches_state(recorded: &[Recorded]) -> bool {
    recorded
        .iter()
        .any(|r| matches!(r, Recorded::Duplicate(..)))
}

/// Builds the jobs and audit events of a notification; see [`record`].
pub fn prepare(
    planned: &[(Alert, Vec<Decision>)],
    config: &Config,
    state: &StateStore,
    metrics: &ResponderMetrics,
    now: f64,
) -> rusqlite::Result<Prepared> {
    let mut jobs = Vec::new();
    let mut events = Vec::new();
    let mut summary = IntakeSummary::default();
    for (alert, decisions) in planned {
        let status = if alert.status == "resolved" {
            "resolved"
        } else {
            "firing"
        };
        metrics
            .touch()
            .alerts_received
            .get_or_create(&labels(&[("status", status)]))
            .inc();
        let unmatched = decisions
            .iter()
            .all(|d| matches!(d, Decision::Unmatched | Decision::OtherInstance { .. }));
        if !unmatched {
            events.push(event(alert, AuditKind::Received, now));
        }
        for d in decisions {
            match d {
                Decision::Run {
                    rule,
                    action,
                    database,
                    key,
                    dry_run,
                    cooldown,
                    ..
                } => {
                    let mut e = event(alert, AuditKind::Matched, now);
                    (e.rule, e.action, e.database) = (
                        Some(rule.clone()),
                        Some(action.clone()),
                        Some(database.clone()),
                    );
                    events.push(e);
                    jobs.push(NewJob {
                        key: key.clone(),
                        source: JobSource::Webhook,
                        rule: Some(rule.clone()),
                        action: action.clone(),
                        database: database.clone(),
                        credential: Some(WEBHOOK_CREDENTIAL),
                        alertname: alert.alertname().map(bounded::label_value),
                        fingerprint: Some(bounded::fingerprint(&alert.fingerprint())),
                        starts_at: Some(bounded::fingerprint(&alert.starts_at)),
                        dry_run: *dry_run,
                        cooldown: *cooldown,
                        labels: command_labels(alert, action, config),
                        ignore_window: false,
                    });
                }
                Decision::Resolved => {
                    summary.resolved += 1;
                    let actions = state.resolve_episode(
                        &bounded::fingerprint(&alert.fingerprint()),
                        &bounded::fingerprint(&alert.starts_at),
                        now,
                    )?;
                    let took = match (
                        humantime::parse_rfc3339_weak(&alert.starts_at),
                        humantime::parse_rfc3339_weak(&alert.ends_at),
                    ) {
                        (Ok(s), Ok(e)) => e.duration_since(s).ok(),
                        _ => None,
                    };
                    for action in &actions {
                        metrics
                            .touch()
                            .remediation_resolved
                            .get_or_create(&labels(&[("action", action)]))
                            .inc();
                        if let Some(took) = took {
                            metrics.touch().time_to_resolve.observe(took.as_secs_f64());
                        }
                    }
                    let mut e = event(alert, AuditKind::Resolved, now);
                    e.detail = Some(format!("closed {} remediation(s)", actions.len()));
                    events.push(e);
                }
                Decision::Unmatched => {
                    summary.unmatched += 1;
                    metrics
                        .touch()
                        .alerts_ignored
                        .get_or_create(&labels(&[("reason", "unmatched")]))
                        .inc();
                }
                Decision::OtherInstance { instance } => {
                    summary.other_instance += 1;
                    metrics
                        .touch()
                        .alerts_ignored
                        .get_or_create(&labels(&[("reason", "other_instance")]))
                        .inc();
                    let mut e = event(alert, AuditKind::Skipped, now);
                    e.reason = Some("other_instance".into());
                    e.detail = Some(format!(
                        "the alert is for instance {:?}, not this caretaker",
                        bounded::label_value(instance)
                    ));
                    events.push(e);
                }
                Decision::UnknownDatabase { rule, database } => {
                    summary.unknown_database += 1;
                    metrics
                        .touch()
                        .alerts_ignored
                        .get_or_create(&labels(&[("reason", "unknown_database")]))
                        .inc();
                    let mut e = event(alert, AuditKind::Skipped, now);
                    (e.rule, e.reason) = (
                        Some(rule.clone()),
                        Some(SkipReason::UnknownDatabase.to_string()),
                    );
                    e.detail = Some(match database {
                        Some(_) => "the alert names a database caretaker does not manage".into(),
                        None => "no database label and several databases configured".into(),
                    });
                    events.push(e);
                }
            }
        }
    }
    if summary.unmatched > 0 {
        // One row for the whole notification, without the alerts' labels.
        events.push(AuditEvent {
            at: now,
            event: AuditKind::Skipped,
            reason: Some("unmatched".into()),
            detail: Some(format!("{} alert(s) matched no rule", summary.unmatched)),
            credential: Some(WEBHOOK_CREDENTIAL.into()),
            ..Default::default()
        });
    }
    Ok(Prepared {
        jobs,
        events,
        summary,
    })
}

/// Accounts for what the first transaction recorded: accepted jobs, and for
/// duplicates their audit and any retry, in one more transaction.
#[allow(clippy::too_many_arguments)]
pub fn settle(
    planned: &[(Alert, Vec<Decision>)],
    reason: Option<&str>,
    jobs: &[NewJob],
    recorded: Vec<Recorded>,
    state: &StateStore,
    metrics: &ResponderMetrics,
    now: f64,
    summary: &mut IntakeSummary,
) -> rusqlite::Result<()> {
    let mut retries = Vec::new();
    let mut duplicate_events = Vec::new();
    for (job, rec) in jobs.iter().zip(recorded) {
        match rec {
            Recorded::New(id) => summary.accepted.push(id),
            Recorded::Duplicate(id, status, finished) => {
                summary.duplicates += 1;
                metrics.skipped(&job.action, &job.database, SkipReason::Duplicate);
                if status == JobStatus::Succeeded && is_repeat(reason, finished, now) {
                    metrics
                        .touch()
                        .remediation_unresolved
                        .get_or_create(&labels(&[("action", &job.action)]))
                        .inc();
                    if planned_retry(planned, &job.key) {
                        let n = state.count_with_prefix(&job.key)?;
                        retries.push(NewJob {
                            key: format!("{}#retry{n}", job.key),
                            ..job.clone()
                        });
                    }
                }
                let mut e = AuditEvent {
                    at: now,
                    event: AuditKind::Skipped,
                    alertname: job.alertname.clone(),
                    fingerprint: job.fingerprint.clone(),
                    rule: job.rule.clone(),
                    action: Some(job.action.clone()),
                    database: Some(job.database.clone()),
                    job_id: Some(id),
                    reason: Some(SkipReason::Duplicate.to_string()),
                    detail: None,
                    credential: Some(WEBHOOK_CREDENTIAL.into()),
                };
                e.detail = Some(format!("job {id} already {status}"));
                duplicate_events.push(e);
            }
        }
    }
    // Retries and the duplicates' audit share one transaction (one fsync).
    for rec in state.record(&retries, &duplicate_events, now)? {
        if let Recorded::New(id) = rec {
            summary.accepted.push(id);
        }
    }
    Ok(())
}

/// A notification of an episode already remediated means the condition
/// persists when Alertmanager says the repeat interval elapsed, or (older
/// Alertmanagers say nothing) when the remediation ended long enough ago that
/// this is not a retry or an HA duplicate of the first delivery.
pub fn is_repeat(reason: Option<&str>, finished: Option<f64>, now: f64) -> bool {
    match reason {
        Some(r) => r == "repeat interval elapsed",
        None => finished.is_some_and(|f| now - f >= REPEAT_AFTER.as_secs_f64()),
    }
}

/// How long after a remediation an unexplained repeat counts as "not resolved".
pub const REPEAT_AFTER: Duration = Duration::from_secs(300);

fn planned_retry(planned: &[(Alert, Vec<Decision>)], key: &str) -> bool {
    planned
        .iter()
        .flat_map(|(_, d)| d)
        .any(|d| matches!(d, Decision::Run { key: k, retry: true, .. } if k == key))
}

/// Default cooldown of jobs started by hand (none: a person decided).
pub const MANUAL_COOLDOWN: Duration = Duration::ZERO;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_repeats_count_as_unresolved() {
        assert!(is_repeat(
            Some("repeat interval elapsed"),
            Some(1000.0),
            1001.0
        ));
        assert!(!is_repeat(Some("new alerts added"), Some(0.0), 1e9));
        assert!(
            !is_repeat(None, Some(1000.0), 1000.0 + 299.0),
            "a quick duplicate is a retry or an HA replica"
        );
        assert!(is_repeat(None, Some(1000.0), 1000.0 + 300.0));
        assert!(!is_repeat(None, None, 1e9));
    }
}
