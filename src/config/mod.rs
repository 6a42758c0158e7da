//! caretaker's configuration: a TOML file, checked strictly and resolved once.
//!
//! The file is parsed into serde types that mirror it (`file.rs`, unknown keys
//! are errors; `parse.rs` gathers every error it can), then validated and
//! turned into [`Config`], whose paths are absolute (relative ones resolve
//! against the file's folder) and whose defaults are filled in. Errors carry the file, line and column.

mod command;
pub mod discover;
mod duration;
mod file;
mod file_database;
mod heartbeat;
mod maintenance;
mod modes;
mod offsite;
mod parse;
mod query;
mod range;
mod responder;
mod schedule;
mod tune;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use command::CommandConfig;
pub use heartbeat::HeartbeatUrl;
pub use maintenance::{CleanupConfig, VacuumConfig, Window};
pub use modes::{Compression, Detail, IntegrityMode};
pub use offsite::{Encryption, OffsiteConfig, OffsiteLocation};
pub use query::QueryConfig;
pub use responder::{known_action, ResponderConfig, Rule};
pub use schedule::{parse_cron, ReportSchedule, ScheduleConfig};
pub use tune::TuneConfig;

/// The default listen address: 10210, outside the taken 9100-9999 range.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:10210";

/// A fully validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from.
    pub source: PathBuf,
    pub web: WebConfig,
    pub collect: CollectConfig,
    /// Extra filesystems to report besides those holding databases and backups.
    pub host_filesystems: Vec<PathBuf>,
    pub databases: Vec<DatabaseConfig>,
    pub responder: ResponderConfig,
    pub rules: Vec<Rule>,
    pub commands: Vec<CommandConfig>,
    pub schedules: Vec<ScheduleConfig>,
    /// `[[query]]` probes, run on every database.
    pub queries: Vec<QueryConfig>,
    /// `[[discover]]` entries; their matches are already in `databases`.
    pub discover: Vec<discover::DiscoverSpec>,
    /// What each entry matched when this configuration was loaded.
    pub discovered: Vec<discover::DiscoverReport>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    pub listen_address: SocketAddr,
    /// The bearer token of the webhook (and of the API when `api_token_file` is unset).
    pub token_file: Option<PathBuf>,
    /// The bearer token of the action API; when set, the webhook's token no longer opens it.
    pub api_token_file: Option<PathBuf>,
    /// The exporter toolkit's web config file (TLS, basic-auth users, headers;
    /// see `web::security`); `--web.config.file` overrides it.
    pub config_file: Option<PathBuf>,
    /// Open connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// A connection that has not sent a request's headers within this is closed
    /// (also an idle keep-alive connection between requests).
    pub header_read_timeout: Duration,
    /// Runs of one action on one database the API accepts per `api_window`.
    pub api_max_runs: u32,
    pub api_window: Duration,
    /// Requested every `heartbeat_interval` while all is well (`daemon::heartbeat`).
    pub heartbeat_url: Option<HeartbeatUrl>,
    pub heartbeat_interval: Duration,
}

/// What command-line flags replace in the file, at startup and at every
/// reload alike.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--web.config.file`: replaces `web.config_file`.
    pub web_config_file: Option<PathBuf>,
}

impl Overrides {
    pub fn apply(&self, config: &mut Config) {
        if let Some(path) = &self.web_config_file {
            config.web.config_file = Some(path.clone());
        }
    }
}

/// Resolves `host:port` (an IP address or a host name such as `localhost`) to
/// the first address it names, for `web.listen_address` and `--web.listen-address`.
pub fn resolve_listen_address(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("{text:?} is not host:port: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// How often each collector runs, and how label values are bounded.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectConfig {
    pub database_interval: Duration,
    pub patterns_interval: Duration,
    pub backups_interval: Duration,
    pub integrity_interval: Duration,
    pub host_interval: Duration,
    /// How often `[[discover]]` globs are matched again besides their folders' change events.
    pub discover_interval: Duration,
    pub timeout: Duration,
    pub integrity_timeout: Duration,
    /// How many distinct values a bounded label keeps before folding into `other`.
    pub label_limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    pub name: String,
    pub path: PathBuf,
    pub integrity_check: IntegrityMode,
    /// Which of its series `/metrics` shows.
    pub detail: Detail,
    pub backup: Option<BackupConfig>,
    /// Where rows are archived before prune and purge delete them.
    pub archive_dir: PathBuf,
    pub prune: PruneConfig,
    /// `tune_patterns`' steps and thresholds.
    pub tune: TuneConfig,
    pub vacuum: VacuumConfig,
    pub cleanup: Vec<CleanupConfig>,
}

/// Seed 001's pruning criteria and seed 000's retention, all configurable.
/// Pruning deletes rows (after archiving them), so it is off until enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneConfig {
    pub enabled: bool,
    /// Criterion 1: last used before this age ago, with usage below `unused_max_usage`.
    pub unused_after: Duration,
    pub unused_max_usage: i64,
    /// Criterion 2: confidence below this and never used.
    pub low_confidence: f64,
    /// Criterion 3: created before this age ago and never used (usage 0).
    pub never_used_after: Duration,
    pub trajectory_retention: Duration,
    pub verification_retention: Duration,
}

impl Default for PruneConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            unused_after: Duration::from_secs(90 * 86400),
            unused_max_usage: 3,
            low_confidence: 0.3,
            never_used_after: Duration::from_secs(180 * 86400),
            trajectory_retention: Duration::from_secs(90 * 86400),
            verification_retention: Duration::from_secs(90 * 86400),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackupConfig {
    pub dir: PathBuf,
    pub retention: Duration,
    pub monthly_retention: Duration,
    /// The age after which the newest backup counts as overdue.
    pub max_age: Duration,
    pub compression: Compression,
    /// zstd level (1-22) or gzip level (1-9).
    pub level: i32,
    /// The check run on every new backup before it is kept.
    pub verify: IntegrityMode,
    /// How many of the newest backups `verify_backups` checks.
    pub verify_newest: usize,
    /// A backup that takes longer is abandoned and its temporary files removed.
    pub timeout: Duration,
    /// `[database.backup.offsite]`: copies off the host.
    pub offsite: Option<OffsiteConfig>,
    /// How often an incremental snapshot (a delta of the changed pages) is
    /// taken; `None` (the default) takes none.
    pub incremental_interval: Option<Duration>,
    /// The age of a chain's full backup after which the next snapshot
    /// starts a new chain with a new full backup.
    pub full_interval: Duration,
}

/// One problem found in a configuration file, with its position when known.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => {
                write!(f, "{}:{}:{}: {}", self.file.display(), l, c, self.message)
            }
            _ => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Every error of a file, so `check-config` can print them all at once.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                column: None,
                message: format!("cannot read the file: {e}"),
            }])
        })?;
        Self::parse(path, &text)
    }

    /// Validates `text` as if it had been read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        file::resolve(path, &base_folder(path), text)
    }

    pub fn database(&self, name: &str) -> Option<&DatabaseConfig> {
        self.databases.iter().find(|d| d.name == name)
    }
}

/// The folder that relative paths in the file at `path` resolve against, as
/// an absolute path: the folder the file was named in (a symlinked file's own
/// folder, not its target's). A bare `caretaker.toml` has the empty path as
/// its parent, which names no folder at all (`open("")` fails, and free
/// space of "" reads as 0), so the file's name is made absolute first.
fn base_folder(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match absolute.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::path::absolute(".").unwrap_or_else(|_| PathBuf::from(".")),
    }
}

/// Turns a byte offset into a 1-based line and column.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `p` against the configuration's folder when relative.
pub(super) fn absolute(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests;
