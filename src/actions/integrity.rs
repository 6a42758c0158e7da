//! `integrity_check` on demand: the same check the integrity collector runs on
//! its schedule, so an alert about a stale check can be answered at once.

use super::{Action, ActionContext, ActionError, Outcome};
use crate::collector::integrity::check;

pub struct IntegrityCheck;

impl Action for IntegrityCheck {
    fn name(&self) -> &'static str {
        "integrity_check"
    }

    fn mutates(&self) -> bool {
        false
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let report = check(
            &ctx.database.path,
            ctx.database.integrity_check,
            ctx.deadline,
        )?;
        let outcome = Outcome::new(if report.ok() {
            "integrity check passed".to_string()
        } else {
            format!(
                "integrity check found problems: {}",
                report.problems.join("; ")
            )
        })
        .figure("integrity_ok", if report.ok() { 1.0 } else { 0.0 })
        .figure(
            "foreign_key_violations",
            report.foreign_key_violations as f64,
        );
        // The check ran: its verdict is a figure (and an exporter metric), not an action failure.
        Ok(outcome)
    }
}
