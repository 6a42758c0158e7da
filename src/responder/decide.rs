//! The executor's decisions, as plain functions of what it has read: whether
//! a job may start, and what a finished action means for the job's record,
//! the breaker and the metrics. [`super::executor`] does the I/O around them
//! (state database, locks, the action's thread); [`super::safety`] holds the
//! cooldown and breaker rules these build on.

use crate::actions::{ActionError, Outcome};
use crate::responder::job::{AuditKind, JobSource, JobStatus, SkipReason};
use crate::responder::safety::{self, Attempt, Hold, Limits};

/// What to do with a job read from the state database, before any lock.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Someone else has it, or it is over: leave it as it is.
    Leave,
    /// Do not run it, for this reason (with the detail for the record).
    Skip(SkipReason, String),
    /// Take the locks and ask the cooldown and breaker.
    Proceed,
}

/// Whether job of `status` on `database` running `action` can go ahead;
/// `database_known` and `action_known` say whether the configuration has them.
pub fn admit(
    status: JobStatus,
    database: &str,
    database_known: bool,
    action: &str,
    action_known: bool,
) -> Admission {
    if status != JobStatus::Queued {
        Admission::Leave
    } else if !database_known {
        Admission::Skip(
            SkipReason::UnknownDatabase,
            format!("database {database:?} is not configured"),
        )
    } else if !action_known {
        Admission::Skip(
            SkipReason::UnknownAction,
            format!("action {action:?} is not available"),
        )
    } else {
        Admission::Proceed
    }
}

/// Under the lock, given the latest attempts: why an automatic job must wait.
/// Runs by hand are a person's decision and are never held.
pub fn hold(source: JobSource, attempts: &[Attempt], now: f64, limits: &Limits) -> Option<Hold> {
    source
        .automatic()
        .then(|| safety::check(attempts, now, limits))
        .flatten()
}

/// The `result` label of a run that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    Success,
    Failure,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Success => "success",
            RunResult::Failure => "failure",
        }
    }
}

/// What a finished action means.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    pub status: JobStatus,
    /// Why it was skipped, for a skip.
    pub reason: Option<SkipReason>,
    /// The error text, for a failure or skip.
    pub error: Option<String>,
    /// The `result` of `caretaker_action_runs_total`; none for a skip.
    pub counted: Option<RunResult>,
    /// Whether `caretaker_action_last_success_timestamp_seconds` moves.
    pub last_success: bool,
    /// The breaker as the next job will find it (open or not); none when
    /// this run is no attempt (a skip, or a dry run).
    pub breaker_open: Option<bool>,
    /// The audit event's kind and reason.
    pub audit: (AuditKind, String),
}

/// Concludes a run that ended at `now` (Unix seconds) from its `result`;
/// `before` are the attempts the claim saw (newest first).
pub fn conclude(
    result: &Result<Outcome, ActionError>,
    source: JobSource,
    dry_run: bool,
    before: &[Attempt],
    now: f64,
    limits: &Limits,
) -> Conclusion {
    let (status, reason, error) = match result {
        Ok(_) => (JobStatus::Succeeded, None, None),
        Err(ActionError::NotConfigured(m)) => (
            JobStatus::Skipped,
            Some(SkipReason::Disabled),
            Some(m.clone()),
        ),
        Err(ActionError::Refused(m)) => (
            JobStatus::Skipped,
            Some(SkipReason::Refused),
            Some(m.clone()),
        ),
        Err(e) => (JobStatus::Failed, None, Some(e.to_string())),
    };
    let ok = status == JobStatus::Succeeded;
    let skipped = status == JobStatus::Skipped;
    let counted = (!skipped).then_some(if ok {
        RunResult::Success
    } else {
        RunResult::Failure
    });
    // This run counts at once, so a success closes the breaker and the last
    // allowed failure opens it (dry runs are not attempts).
    let breaker_open = (!skipped && !dry_run).then(|| {
        let mut after = vec![Attempt {
            at: now,
            ok,
            by_hand: !source.automatic(),
        }];
        after.extend_from_slice(before);
        safety::breaker_open_failures(&after, limits)
    });
    let audit = match reason {
        Some(reason) => (AuditKind::Skipped, reason.to_string()),
        None => (AuditKind::Ran, status.to_string()),
    };
    Conclusion {
        status,
        reason,
        error,
        counted,
        last_success: ok && !dry_run,
        breaker_open,
        audit,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: Limits = Limits {
        cooldown: Duration::from_secs(600),
        max_runs: 3,
        window: Duration::from_secs(3600),
        failures: 2,
    };

    fn failed_once() -> Vec<Attempt> {
        vec![Attempt {
            at: 1000.0,
            ok: false,
            by_hand: false,
        }]
    }

    #[test]
    fn only_queued_jobs_of_known_databases_and_actions_proceed() {
        let admit = |status, db, action| admit(status, "memory", db, "vacuum", action);
        assert_eq!(admit(JobStatus::Queued, true, true), Admission::Proceed);
        for status in [JobStatus::Running, JobStatus::Succeeded, JobStatus::Skipped] {
            assert_eq!(admit(status, false, false), Admission::Leave);
        }
        assert!(matches!(
            admit(JobStatus::Queued, false, true),
            Admission::Skip(SkipReason::UnknownDatabase, d) if d.contains("\"memory\"")
        ));
        assert!(matches!(
            admit(JobStatus::Queued, true, false),
            Admission::Skip(SkipReason::UnknownAction, d) if d.contains("\"vacuum\"")
        ));
    }

    #[test]
    fn cooldowns_and_breakers_hold_automatic_jobs_only() {
        let recent = [Attempt {
            at: 9_900.0,
            ok: true,
            by_hand: false,
        }];
        for source in [JobSource::Webhook, JobSource::Schedule] {
            assert_eq!(
                hold(source, &recent, 10_000.0, &LIMITS),
                Some(Hold::Cooldown)
            );
        }
        for source in [JobSource::Api, JobSource::Cli] {
            assert_eq!(hold(source, &recent, 10_000.0, &LIMITS), None);
        }
        assert_eq!(hold(JobSource::Webhook, &recent, 10_600.0, &LIMITS), None);
    }

    #[test]
    fn the_last_allowed_failure_opens_the_breaker_and_a_success_closes_it() {
        let failed: Result<Outcome, ActionError> = Err(ActionError::Failed("boom".into()));
        let c = conclude(
            &failed,
            JobSource::Webhook,
            false,
            &failed_once(),
            2000.0,
            &LIMITS,
        );
        assert_eq!(c.status, JobStatus::Failed);
        assert_eq!(c.counted, Some(RunResult::Failure));
        assert_eq!(c.error.as_deref(), Some("boom"));
        assert_eq!(c.breaker_open, Some(true));
        assert!(!c.last_success);
        assert_eq!(c.audit, (AuditKind::Ran, JobStatus::Failed.to_string()));

        // A success by hand closes it.
        let c = conclude(
            &Ok(Outcome::new("done")),
            JobSource::Cli,
            false,
            &failed_once(),
            2000.0,
            &LIMITS,
        );
        assert_eq!(c.status, JobStatus::Succeeded);
        assert_eq!(c.counted, Some(RunResult::Success));
        assert_eq!(c.breaker_open, Some(false));
        assert!(c.last_success);
        assert_eq!(c.audit, (AuditKind::Ran, JobStatus::Succeeded.to_string()));
    }

    #[test]
    fn dry_runs_are_no_attempts() {
        let failed: Result<Outcome, ActionError> = Err(ActionError::Failed("boom".into()));
        let c = conclude(
            &failed,
            JobSource::Webhook,
            true,
            &failed_once(),
            2000.0,
            &LIMITS,
        );
        assert_eq!(c.counted, Some(RunResult::Failure));
        assert_eq!(c.breaker_open, None);
        let c = conclude(
            &Ok(Outcome::new("would")),
            JobSource::Api,
            true,
            &[],
            2000.0,
            &LIMITS,
        );
        assert!(!c.last_success, "a dry run is no success of the action");
    }

    #[test]
    fn missing_configuration_and_refusals_are_skips_that_count_nowhere() {
        for (error, reason) in [
            (
                ActionError::NotConfigured("no folder".into()),
                SkipReason::Disabled,
            ),
            (ActionError::Refused("no room".into()), SkipReason::Refused),
        ] {
            let c = conclude(
                &Err(error),
                JobSource::Schedule,
                false,
                &failed_once(),
                2000.0,
                &LIMITS,
            );
            assert_eq!(c.status, JobStatus::Skipped);
            assert_eq!(c.reason, Some(reason));
            assert_eq!(c.counted, None);
            assert_eq!(c.breaker_open, None);
            assert_eq!(c.audit, (AuditKind::Skipped, reason.to_string()));
        }
    }
}
