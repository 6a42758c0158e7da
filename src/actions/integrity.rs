//! `integrity_check` on demand: the same check the integrity collector runs on
//! its schedule, so an alert about a stale check can be answered at once. A
//! damaged database is a verdict (`integrity_ok` 0), not a failed run.

use super::{Action, ActionContext, ActionError, Outcome, Report};
use crate::store::integrity::check;

pub struct IntegrityCheck;

impl Action for IntegrityCheck {
    fn mutates(&self) -> bool {
        false
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let report = check(
            &ctx.database.path,
            ctx.database.integrity_check,
            ctx.deadline,
        )?;
        let mut outcome = Outcome::new(summary(&report.problems))
            .figure("integrity_ok", if report.ok() { 1.0 } else { 0.0 })
            .figure("problems", report.problems.len() as f64);
        if let Some(violations) = report.foreign_key_violations {
            outcome = outcome.figure("foreign_key_violations", violations as f64);
        }
        // The check ran: its verdict is a figure (and an exporter metric), not an action failure.
        Ok(outcome.report(Report::Integrity(report)))
    }
}

/// Messages named in a summary at most; the rest are counted.
const SUMMARY_PROBLEMS: usize = 5;

/// One sentence for the audit and notifications.
fn summary(problems: &[String]) -> String {
    if problems.is_empty() {
        return "integrity check passed".to_string();
    }
    let shown = problems.iter().take(SUMMARY_PROBLEMS).cloned();
    let mut text = format!(
        "integrity check found problems: {}",
        shown.collect::<Vec<_>>().join("; ")
    );
    if problems.len() > SUMMARY_PROBLEMS {
        text.push_str(&format!(
            " (and {} more)",
            problems.len() - SUMMARY_PROBLEMS
        ));
    }
    text
}
