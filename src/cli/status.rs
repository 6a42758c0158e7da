//! `caretaker status`: one line per database for a person, a cron job or a
//! monitoring system's check command, read from the files themselves (no
//! running daemon needed).
//!
//! Exit 0 when all is well; 1 when something needs a person, on the
//! conditions of the critical alerts that concern one database
//! (`CaretakerDatabaseDown`, `CaretakerBackupMissing`,
//! `CaretakerIntegrityCheckFailed` as far as the last `integrity_check` job
//! tells, `CaretakerRestoreDrillFailed` from the drills recorded in the
//! backup folder); 2 when caretaker cannot tell (a configuration that does
//! not load, a backup folder or state database that cannot be read). Open
//! breakers, failed jobs and the offsite copy's age (or a store that cannot
//! be listed) are shown but, like their alerts, are warnings.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::actions::kind::ActionKind;
use crate::backups::drill::{recorded, DrillSource};
use crate::backups::offsite::Offsite;
use crate::config::{Config, DatabaseConfig, OffsiteConfig};
use crate::metrics::unix_seconds;
use crate::responder::job::JobStatus;
use crate::responder::safety::{breaker_open_failures, Limits};
use crate::responder::state::{JobFilter, StateStore};

/// Arguments of `caretaker status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[arg(long = "config.file")]
    pub config_file: PathBuf,
    /// `text`: one line per database (coloured on a terminal); `json`: one object.
    #[arg(long, value_enum, default_value = "text")]
    pub format: StatusFormat,
}

/// How `caretaker status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

/// What a database's state asks of a person; ordered from best to worst
/// for the exit code, which is the worst of all databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    NeedsPerson,
    Unknown,
}

impl Verdict {
    fn exit_code(self) -> ExitCode {
        match self {
            Verdict::Ok => ExitCode::SUCCESS,
            Verdict::NeedsPerson => ExitCode::from(1),
            Verdict::Unknown => ExitCode::from(2),
        }
    }
}

/// One database's line.
#[derive(Debug, Serialize)]
pub struct DatabaseStatus {
    pub database: String,
    pub up: bool,
    pub size_bytes: Option<u64>,
    /// Backups whose checksum sidecar matches; none without a backup section.
    pub verified_backups: Option<usize>,
    pub newest_backup_age_seconds: Option<f64>,
    /// The offsite store, when `[database.backup.offsite]` is configured.
    pub offsite: Option<OffsiteStatus>,
    /// The last restore drill of each source (none before the first).
    pub drills: BTreeMap<DrillSource, DrillStatus>,
    /// The last `integrity_check` job's result, when one ran.
    pub integrity_ok: Option<bool>,
    pub open_breakers: Vec<String>,
    pub failed_jobs_last_day: usize,
    /// Why the verdict is not `ok`.
    pub problems: Vec<String>,
    pub verdict: Verdict,
}

/// What the offsite store showed when listed now.
#[derive(Debug, Serialize)]
pub struct OffsiteStatus {
    pub reachable: bool,
    /// Since the newest remote backup was uploaded; none when there is none
    /// or the store cannot be listed.
    pub newest_age_seconds: Option<f64>,
}

/// One source's last restore drill, as recorded in the backup folder.
#[derive(Debug, Serialize)]
pub struct DrillStatus {
    pub ok: bool,
    pub age_seconds: f64,
}

/// Prints every database's status and returns the worst verdict's exit code.
pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.config_file) {
        Ok(config) => config,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            return Ok(Verdict::Unknown.exit_code());
        }
    };
    let now = SystemTime::now();
    let statuses: Vec<DatabaseStatus> = config
        .databases
        .iter()
        .map(|db| database_status(&config, db, now))
        .collect();
    let worst = statuses
        .iter()
        .map(|s| s.verdict)
        .max()
        .unwrap_or(Verdict::Ok);
    match args.format {
        StatusFormat::Json => {
            let doc = serde_json::json!({ "verdict": worst, "databases": statuses });
            println!("{doc}");
        }
        StatusFormat::Text => {
            let colour = std::io::stdout().is_terminal();
            for s in &statuses {
                println!("{}", text_line(s, colour));
            }
        }
    }
    Ok(worst.exit_code())
}

fn database_status(config: &Config, db: &DatabaseConfig, now: SystemTime) -> DatabaseStatus {
    let mut needs = Vec::new();
    let mut unknown = Vec::new();
    let up = match database_readable(&db.path) {
        Ok(()) => true,
        Err(e) => {
            needs.push(format!("database down: {e}"));
            false
        }
    };
    let size_bytes = std::fs::metadata(&db.path).ok().map(|m| m.len());
    let (mut verified_backups, mut newest_backup_age_seconds) = (None, None);
    let (mut offsite, mut drills) = (None, BTreeMap::new());
    if let Some(backup) = &db.backup {
        offsite = backup
            .offsite
            .as_ref()
            .map(|cfg| offsite_status(cfg, &db.name, now));
        drills = recorded(&backup.dir, &db.name)
            .into_iter()
            .map(|(source, d)| {
                let age = (unix_seconds(now) - d.at).max(0.0);
                if !d.success {
                    needs.push(format!("last {} restore drill failed", source.as_str()));
                }
                let status = DrillStatus {
                    ok: d.success,
                    age_seconds: age,
                };
                (source, status)
            })
            .collect();
    }
    if db.backup.is_some() {
        match crate::backups::restore::list_backups(db) {
            Ok(backups) => {
                let verified: Vec<_> = backups.iter().filter(|b| b.verified).collect();
                verified_backups = Some(verified.len());
                newest_backup_age_seconds = verified
                    .iter()
                    .map(|b| now.duration_since(b.taken).unwrap_or(Duration::ZERO))
                    .min()
                    .map(|age| age.as_secs_f64());
                if verified.is_empty() {
                    needs.push("no verified backup".to_string());
                }
            }
            Err(e) => unknown.push(format!("backups: {e}")),
        }
    }
    let history = match history_of(config, &db.name, now) {
        Ok(history) => history,
        Err(e) => {
            unknown.push(format!("state database: {e}"));
            History::default()
        }
    };
    if history.integrity_ok == Some(false) {
        needs.push("last integrity_check failed".to_string());
    }
    let verdict = if !unknown.is_empty() {
        Verdict::Unknown
    } else if !needs.is_empty() {
        Verdict::NeedsPerson
    } else {
        Verdict::Ok
    };
    needs.extend(unknown);
    DatabaseStatus {
        database: db.name.clone(),
        up,
        size_bytes,
        verified_backups,
        newest_backup_age_seconds,
        offsite,
        drills,
        integrity_ok: history.integrity_ok,
        open_breakers: history.open_breakers,
        failed_jobs_last_day: history.failed_jobs_last_day,
        problems: needs,
        verdict,
    }
}

/// Lists the offsite store; one that cannot be listed is a warning (its
/// alert, `CaretakerOffsiteUnreachable`, is one), logged for the person.
fn offsite_status(cfg: &OffsiteConfig, database: &str, now: SystemTime) -> OffsiteStatus {
    match Offsite::open(cfg, database).and_then(|o| o.list()) {
        Ok(remote) => OffsiteStatus {
            reachable: true,
            newest_age_seconds: remote.first().map(|b| {
                now.duration_since(b.uploaded)
                    .unwrap_or(Duration::ZERO)
                    .as_secs_f64()
            }),
        },
        Err(e) => {
            tracing::warn!(database, error = %e, "offsite store cannot be listed");
            OffsiteStatus {
                reachable: false,
                newest_age_seconds: None,
            }
        }
    }
}

/// The database opens read-only (never created) and its schema reads.
fn database_readable(path: &Path) -> rusqlite::Result<()> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(())
}

#[derive(Debug, Default)]
struct History {
    integrity_ok: Option<bool>,
    open_breakers: Vec<String>,
    failed_jobs_last_day: usize,
}

/// What the state database says about `database`; nothing when there is
/// none yet (caretaker never ran a job), which is not a problem.
fn history_of(config: &Config, database: &str, now: SystemTime) -> anyhow::Result<History> {
    let path = &config.responder.state_path;
    if !path.exists() {
        return Ok(History::default());
    }
    let now = unix_seconds(now);
    let (store, _) = StateStore::open(path, now)?;
    let r = &config.responder;
    let limits = Limits::of(r, Duration::ZERO);
    let commands = config
        .commands
        .iter()
        .map(|c| format!("command:{}", c.name));
    let mut open_breakers = Vec::new();
    for action in ActionKind::ALL
        .iter()
        .map(|a| a.to_string())
        .chain(commands)
    {
        if breaker_open_failures(&store.attempts(&action, database, 100)?, &limits) {
            open_breakers.push(action);
        }
    }
    let failed = store.jobs(&JobFilter {
        action: None,
        database: Some(database.to_string()),
        status: Some(JobStatus::Failed.as_str().to_string()),
        limit: 10_000,
    })?;
    let day_ago = now - 86_400.0;
    let failed_jobs_last_day = failed
        .iter()
        .filter(|j| j.finished_at.unwrap_or(j.created_at) >= day_ago)
        .count();
    let integrity_ok = store
        .latest_finished(&[ActionKind::IntegrityCheck], 0.0)?
        .into_iter()
        .find(|j| j.database == database && j.status == JobStatus::Succeeded)
        .map(|j| {
            j.outcome
                .as_ref()
                .and_then(|o| o["figures"]["integrity_ok"].as_f64())
                .is_some_and(|v| v >= 1.0)
        });
    Ok(History {
        integrity_ok,
        open_breakers,
        failed_jobs_last_day,
    })
}

fn text_line(s: &DatabaseStatus, colour: bool) -> String {
    let paint = |code: &str, text: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let verdict = match s.verdict {
        Verdict::Ok => paint("32", "ok"),
        Verdict::NeedsPerson => paint("31;1", "NEEDS A PERSON"),
        Verdict::Unknown => paint("33", "UNKNOWN"),
    };
    let size = s.size_bytes.map_or("-".to_string(), |b| {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    });
    let ago = |seconds: f64| humantime::format_duration(Duration::from_secs(seconds as u64));
    let backup = match (s.verified_backups, s.newest_backup_age_seconds) {
        (None, _) => "not configured".to_string(),
        (Some(n), Some(age)) => format!("{} ago ({n} verified)", ago(age)),
        (Some(_), None) => "none".to_string(),
    };
    let offsite = match &s.offsite {
        None => String::new(),
        Some(OffsiteStatus {
            newest_age_seconds: Some(age),
            ..
        }) => format!("  offsite {} ago", ago(*age)),
        Some(OffsiteStatus {
            reachable: true, ..
        }) => "  offsite none".to_string(),
        Some(_) => "  offsite unreachable".to_string(),
    };
    let drills = if s.drills.is_empty() {
        "never".to_string()
    } else {
        s.drills
            .iter()
            .map(|(source, d)| {
                let result = if d.ok { "ok" } else { "FAILED" };
                format!("{} {result} {} ago", source.as_str(), ago(d.age_seconds))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let integrity = match s.integrity_ok {
        None => "-",
        Some(true) => "ok",
        Some(false) => "FAILED",
    };
    let breakers = if s.open_breakers.is_empty() {
        "none".to_string()
    } else {
        s.open_breakers.join(",")
    };
    let mut line = format!(
        "{verdict}  {}  {}  size {size}  backup {backup}{offsite}  drill {drills}  integrity {integrity}  breakers {breakers}  failed jobs (24h) {}",
        s.database,
        if s.up { "up" } else { "down" },
        s.failed_jobs_last_day
    );
    if !s.problems.is_empty() {
        line.push_str(&format!("  ({})", s.problems.join("; ")));
    }
    line
}
