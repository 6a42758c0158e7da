//! Schedules: the runbooks' cron jobs (`[[schedule]]`), actions and reports on
//! a timetable, through the same engine as the rules of [`super::responder`].

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::command::CommandConfig;
use super::responder::{known_action, Problem};
use crate::actions::kind::ActionKind;

/// Actions on a timetable: the runbooks' cron jobs, through the same engine.
#[derive(Debug, Clone)]
pub struct ScheduleConfig {
    pub name: String,
    /// The expression as written (5 fields as in crontab, or 6 with seconds), UTC.
    pub cron: String,
    pub schedule: cron::Schedule,
    pub actions: Vec<String>,
    /// One database, or every configured database when absent.
    pub database: Option<String>,
    pub dry_run: bool,
    /// `report = { period, dir }`: the schedule also runs `report:<name>`.
    pub report: Option<ReportSchedule>,
}

/// Reports a schedule writes into a folder (`caretaker report`'s figures).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSchedule {
    pub period: crate::report::Period,
    pub dir: PathBuf,
    pub format: crate::report::render::Format,
}

impl PartialEq for ScheduleConfig {
    fn eq(&self, o: &Self) -> bool {
        (
            &self.name,
            &self.cron,
            &self.actions,
            &self.database,
            self.dry_run,
            &self.report,
        ) == (
            &o.name,
            &o.cron,
            &o.actions,
            &o.database,
            o.dry_run,
            &o.report,
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSchedule {
    name: Spanned<String>,
    cron: Spanned<String>,
    actions: Option<Spanned<Vec<String>>>,
    database: Option<Spanned<String>>,
    #[serde(default)]
    dry_run: bool,
    report: Option<FileReportSchedule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReportSchedule {
    period: crate::report::Period,
    dir: String,
    #[serde(default = "html")]
    format: crate::report::render::Format,
}

fn html() -> crate::report::render::Format {
    crate::report::render::Format::Html
}

/// Parses crontab's 5 fields (minute first) or cron's 6-7 (seconds first).
pub fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
    use std::str::FromStr;
    let fields = text.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {text}")
    } else {
        text.to_string()
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("invalid cron expression {text:?}: {e}"))
}

pub(super) fn resolve_schedules(
    raw: &[FileSchedule],
    databases: &[String],
    commands: &[CommandConfig],
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<ScheduleConfig> {
    let mut out: Vec<ScheduleConfig> = Vec::new();
    for s in raw {
        if out.iter().any(|o| &o.name == s.name.get_ref()) {
            problems.push((
                Some(s.name.span().start),
                format!("schedule name {:?} is used twice", s.name.get_ref()),
            ));
        }
        let schedule = match parse_cron(s.cron.get_ref()) {
            Ok(c) => c,
            Err(e) => {
                problems.push((Some(s.cron.span().start), e));
                continue;
            }
        };
        let written = s
            .actions
            .as_ref()
            .map(|a| a.get_ref().clone())
            .unwrap_or_default();
        let actions_at = s.actions.as_ref().map(|a| a.span().start);
        for action in &written {
            if !known_action(action, commands) {
                problems.push((actions_at, format!("unknown action {action:?}")));
            }
        }
        if let Some(db) = &s.database {
            if !databases.contains(db.get_ref()) {
                problems.push((
                    Some(db.span().start),
                    format!("schedule database {:?} is not configured", db.get_ref()),
                ));
            }
        }
        let report = s.report.as_ref().map(|r| ReportSchedule {
            period: r.period,
            dir: super::absolute(base, &r.dir),
            format: r.format,
        });
        let mut actions = written;
        if report.is_some() {
            actions.push(ActionKind::Report(s.name.get_ref().clone()).to_string());
        } else if actions.is_empty() {
            problems.push((
                Some(s.name.span().start),
                format!("schedule {:?} needs actions or a report", s.name.get_ref()),
            ));
        }
        out.push(ScheduleConfig {
            name: s.name.get_ref().clone(),
            cron: s.cron.get_ref().clone(),
            schedule,
            actions,
            database: s.database.as_ref().map(|d| d.get_ref().clone()),
            dry_run: s.dry_run,
            report,
        });
    }
    out
}
