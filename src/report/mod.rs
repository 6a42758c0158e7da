//! `caretaker report`: the seeds' weekly and monthly reports (seed 000,
//! "Weekly Maintenance" step 4 and "Monthly Maintenance"), computed from the
//! database and caretaker's own history without a running daemon.
//!
//! Figures that a collector already computes (confidence tiers, prune
//! candidates, expired entries) come from running that collector once, so
//! the report and `/metrics` cannot disagree; only the figures over time
//! (per day of the period) are queried here, in [`figures`]; offsite copies
//! and restore drills are read in [`copies`]. [`render`]
//! turns a [`Report`] into Markdown or one self-contained HTML file.

pub mod copies;
pub mod figures;
pub mod render;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use crate::backups::BackupSet;
use crate::collector::activity::ActivityCollector;
use crate::collector::patterns::PatternsCollector;
use crate::collector::Collector;
use crate::config::{Config, DatabaseConfig};
use crate::metrics::{unix_seconds, MetricSet};
pub use copies::{DrillSummary, DrillsSummary, OffsiteSummary};

/// How far back a report looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Week,
    Month,
}

impl Period {
    pub fn days(self) -> u32 {
        match self {
            Period::Week => 7,
            Period::Month => 30,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// Why a report could not be made. Nothing is written then.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("database {0}: {1}")]
    Sqlite(String, rusqlite::Error),
    #[error("database {0}: {1}")]
    Collect(String, crate::collector::CollectError),
}

/// One day of the period (UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Average of `metrics_log`'s `neural_operations_per_second` that day.
    pub ops_per_second: Option<f64>,
    pub patterns_added: f64,
    /// Average confidence of the patterns added that day.
    pub added_confidence: Option<f64>,
    /// Average `truth_score` of that day's verifications.
    pub truth_score: Option<f64>,
    pub verifications: f64,
}

/// One agent's verifications in the period.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentScore {
    pub agent: String,
    pub truth_score: f64,
    pub verifications: f64,
}

/// caretaker's jobs of one action in the period, by outcome.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionCount {
    pub action: String,
    pub succeeded: u64,
    pub failed: u64,
    pub other: u64,
}

/// Backups of the database taken in the period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackupSummary {
    pub configured: bool,
    pub taken: u64,
    pub verified: u64,
    pub bytes: u64,
    pub newest: Option<f64>,
}

/// Everything one report shows for one database.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub database: String,
    pub period: Period,
    /// Unix seconds: the period is `[from, to)`.
    pub from: f64,
    pub to: f64,
    pub days: Vec<Day>,
    /// Patterns per confidence tier now, best tier first (the patterns collector's tiers).
    pub tiers: Vec<(String, f64)>,
    pub prune_candidates: Option<f64>,
    pub expired_entries: Option<f64>,
    pub agents: Vec<AgentScore>,
    pub actions: Vec<ActionCount>,
    /// Why caretaker's history is missing, when it is.
    pub history_note: Option<String>,
    pub backups: BackupSummary,
    pub offsite: OffsiteSummary,
    pub drills: DrillsSummary,
}

/// The tiers of `caretaker_patterns`, best first.
pub const TIERS: [&str; 6] = ["excellent", "very_good", "good", "fair", "moderate", "low"];

fn sum_by(set: &MetricSet, name: &str, label: &str, value: &str) -> f64 {
    set.families()
        .iter()
        .filter(|f| f.name == name)
        .flat_map(|f| f.samples.iter())
        .filter(|(labels, _)| labels.iter().any(|(k, v)| *k == label && v == value))
        .map(|(_, v)| v)
        .sum()
}

/// Computes the report of `db` for the period ending at `now`.
pub fn gather(
    config: &Config,
    db: &DatabaseConfig,
    period: Period,
    now: SystemTime,
) -> Result<Report, ReportError> {
    let to = unix_seconds(now);
    let from = to - f64::from(period.days()) * 86_400.0;
    let deadline = Instant::now() + config.collect.timeout;
    let sqlite = |e| ReportError::Sqlite(db.name.clone(), e);
    let collect = |e| ReportError::Collect(db.name.clone(), e);
    let limit = config.collect.label_limit;
    let (days, agents) = figures::over_time(&db.path, from, to, limit, deadline).map_err(sqlite)?;
    let patterns = PatternsCollector::new(&db.path, limit, db.prune.clone())
        .collect(deadline)
        .map_err(collect)?;
    let activity = ActivityCollector::new(&db.path, limit)
        .collect(deadline)
        .map_err(collect)?;
    let tiers = TIERS
        .iter()
        .map(|t| {
            (
                t.to_string(),
                sum_by(&patterns, "caretaker_patterns", "confidence_tier", t),
            )
        })
        .collect();
    let (jobs, history_note) = match figures::jobs(config, &db.name, from, to) {
        Ok(jobs) => (jobs, None),
        Err(note) => (Vec::new(), Some(note)),
    };
    let actions = figures::actions(&jobs);
    let backups = match BackupSet::of(db) {
        Some(set) => {
            let files = set.list(deadline).unwrap_or_default();
            let mut summary = BackupSummary {
                configured: true,
                ..BackupSummary::default()
            };
            for f in files {
                let at = unix_seconds(f.taken);
                if at >= from && at < to {
                    summary.taken += 1;
                    summary.verified += u64::from(f.verified);
                    summary.bytes += f.size;
                    summary.newest = Some(summary.newest.map_or(at, |n: f64| n.max(at)));
                }
            }
            summary
        }
        None => BackupSummary::default(),
    };
    Ok(Report {
        database: db.name.clone(),
        period,
        from,
        to,
        days,
        tiers,
        prune_candidates: patterns.value("caretaker_pattern_prune_candidates", &[]),
        expired_entries: activity.value("caretaker_memory_entries_expired", &[]),
        agents,
        actions,
        history_note,
        backups,
        offsite: copies::offsite(db, &jobs, from, to),
        drills: copies::drills(db, &jobs, from, to),
    })
}

/// `SystemTime` from Unix seconds.
pub fn at(seconds: f64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0))
}

/// Writes `bytes` to `path` through a temporary file beside it.
pub fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
