//! `report:<schedule>`: the report a `[[schedule]]` with `report = { period,
//! dir }` writes into its folder, one file per database and firing, through
//! the same engine (audit, history, `notify_url`) as every other action. Its
//! outcome's summary is the one paragraph posted to `notify_url`.

use super::{Action, ActionContext, ActionError, Outcome};
use crate::config::{Config, ReportSchedule};
use crate::report::render::{self, Format};
use crate::report::{gather, Report};

pub struct WriteReport {
    pub config: Config,
    pub settings: ReportSchedule,
}

/// The report in one paragraph, for notifications and the audit.
pub fn summary(r: &Report) -> String {
    let added: f64 = r.days.iter().map(|d| d.patterns_added).sum();
    let verifications: f64 = r.days.iter().map(|d| d.verifications).sum();
    let scored: f64 = r
        .days
        .iter()
        .filter_map(|d| d.truth_score.map(|t| t * d.verifications))
        .sum();
    let failed: u64 = r.actions.iter().map(|a| a.failed).sum();
    let jobs: u64 = r
        .actions
        .iter()
        .map(|a| a.succeeded + a.failed + a.other)
        .sum();
    let truth = if verifications > 0.0 {
        format!(
            "average truth score {:.3} over {verifications} verifications",
            scored / verifications
        )
    } else {
        "no verifications".to_string()
    };
    format!(
        "{} {}ly report: {added} patterns added, {truth}, {} prune candidates and {} expired memory entries now; caretaker ran {jobs} jobs ({failed} failed), took {} backups ({} verified), uploaded {} offsite copies ({} uploads failed) and ran {} restore drills ({} failed).",
        r.database,
        r.period.as_str(),
        r.prune_candidates.unwrap_or(0.0),
        r.expired_entries.unwrap_or(0.0),
        r.backups.taken,
        r.backups.verified,
        r.offsite.uploaded,
        r.offsite.upload_failures,
        r.drills.succeeded + r.drills.failed,
        r.drills.failed,
    )
}

impl Action for WriteReport {
    fn mutates(&self) -> bool {
        false
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let report = gather(&self.config, ctx.database, self.settings.period, ctx.now)
            .map_err(|e| ActionError::Failed(e.to_string()))?;
        let (text, ext) = match self.settings.format {
            Format::Html => (render::html(std::slice::from_ref(&report)), "html"),
            Format::Markdown => (render::markdown(&report), "md"),
        };
        let day = humantime::format_rfc3339_seconds(ctx.now).to_string();
        let name = format!(
            "{}-{}-{}.{ext}",
            ctx.database.name,
            self.settings.period.as_str(),
            day.get(..10).unwrap_or("report")
        );
        let path = self.settings.dir.join(name);
        let summary = summary(&report);
        if ctx.dry_run {
            return Ok(Outcome::new(format!(
                "would write {}: {summary}",
                path.display()
            )));
        }
        crate::store::private::create_dir_all(&self.settings.dir)
            .and_then(|()| crate::report::write_file(&path, text.as_bytes()))
            .map_err(|e| ActionError::Failed(format!("writing {}: {e}", path.display())))?;
        Ok(Outcome::new(summary).figure("report_bytes", text.len() as f64))
    }
}
