//! The configuration file as written, and its validation into [`Config`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::command::{resolve_commands, FileCommand};
use super::discover;
use super::duration::HumanDuration;
use super::file_database::FileDatabase;
use super::maintenance::{resolve_cleanup, resolve_vacuum};
use super::modes::Compression;
use super::offsite::resolve_offsite;
use super::query::{resolve_queries, FileQuery};
use super::range::ranged;
use super::responder::{resolve_responder, resolve_rules, FileResponder, FileRule};
use super::schedule::{resolve_schedules, FileSchedule};
use super::{
    absolute, line_column, resolve_listen_address, BackupConfig, CollectConfig, Config,
    ConfigError, ConfigErrors, DatabaseConfig, PruneConfig, WebConfig, DEFAULT_LISTEN_ADDRESS,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    web: FileWeb,
    #[serde(default)]
    collect: FileCollect,
    #[serde(default)]
    host: FileHost,
    #[serde(default)]
    database: Vec<FileDatabase>,
    #[serde(default)]
    responder: FileResponder,
    #[serde(default)]
    rule: Vec<FileRule>,
    #[serde(default)]
    command: Vec<FileCommand>,
    #[serde(default)]
    schedule: Vec<FileSchedule>,
    #[serde(default)]
    query: Vec<FileQuery>,
    /// `[[discover]]`: read as tables, see [`super::discover`].
    #[serde(default)]
    discover: Vec<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWeb {
    listen_address: Option<Spanned<String>>,
    token_file: Option<String>,
    api_token_file: Option<String>,
    config_file: Option<String>,
    max_connections: Option<Spanned<i64>>,
    header_read_timeout: Option<HumanDuration>,
    api_max_runs: Option<Spanned<i64>>,
    api_window: Option<HumanDuration>,
    heartbeat_url: Option<Spanned<String>>,
    heartbeat_interval: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCollect {
    database_interval: Option<HumanDuration>,
    patterns_interval: Option<HumanDuration>,
    backups_interval: Option<HumanDuration>,
    integrity_interval: Option<HumanDuration>,
    host_interval: Option<HumanDuration>,
    discover_interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    integrity_timeout: Option<HumanDuration>,
    label_limit: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHost {
    #[serde(default)]
    filesystems: Vec<String>,
}

const DAY: u64 = 24 * 3600;

pub(super) fn resolve(path: &Path, base: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let error_at = |offset: Option<usize>, message: String| {
        let (line, column) = match offset {
            Some(o) => {
                let (l, c) = line_column(text, o);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            file: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let parse = |text: &str| -> Result<FileConfig, ConfigErrors> {
        super::parse::parse(text).map_err(|errors| {
            let errors = errors.iter().map(|e| {
                let message = e.message().trim().to_string();
                error_at(e.span().map(|s| s.start), message)
            });
            ConfigErrors(errors.collect())
        })
    };
    let raw = parse(text)?;
    // Discovered databases are resolved as if they had been written here.
    let (raw, discover, discovered) = match discover::specs(&raw.discover, base) {
        Ok(specs) if specs.is_empty() => (raw, specs, Vec::new()),
        Ok(specs) => {
            let explicit: Vec<(String, PathBuf)> = raw
                .database
                .iter()
                .map(|d| (d.name.get_ref().clone(), absolute(base, d.path.get_ref())))
                .collect();
            let (generated, reports) = discover::generate(&specs, &explicit)
                .map_err(|e| ConfigErrors(vec![error_at(None, format!("discover: {e}"))]))?;
            let raw = if generated.is_empty() {
                raw
            } else {
                parse(&format!("{text}\n{generated}")).map_err(|e| {
                    ConfigErrors(
                        e.0.into_iter()
                            .map(|mut e| {
                                e.message = format!("a discovered database: {}", e.message);
                                e
                            })
                            .collect(),
                    )
                })?
            };
            (raw, specs, reports)
        }
        Err(e) => return Err(ConfigErrors(vec![error_at(None, e)])),
    };

    let mut errors = Vec::new();
    let resolve_path = |p: &str| absolute(base, p);

    let listen_address = match &raw.web.listen_address {
        Some(addr) => match resolve_listen_address(addr.get_ref()) {
            Ok(a) => Some(a),
            Err(e) => {
                let msg = format!("web.listen_address {e}");
                errors.push(error_at(Some(addr.span().start), msg));
                None
            }
        },
        None => DEFAULT_LISTEN_ADDRESS.parse().ok(),
    };

    let mut web_count = |n: &Option<Spanned<i64>>, key: &str, max: i64, default: i64| match n {
        Some(n) if *n.get_ref() < 1 || *n.get_ref() > max => {
            let msg = format!("web.{key} must be between 1 and {max}, not {}", n.get_ref());
            errors.push(error_at(Some(n.span().start), msg));
            default
        }
        Some(n) => *n.get_ref(),
        None => default,
    };
    let max_connections = web_count(&raw.web.max_connections, "max_connections", 65_536, 512);
    let api_max_runs = web_count(&raw.web.api_max_runs, "api_max_runs", 1_000_000, 6);
    let heartbeat_url =
        super::heartbeat::resolve(raw.web.heartbeat_url.as_ref()).unwrap_or_else(|(at, msg)| {
            errors.push(error_at(Some(at), msg));
            None
        });

    let label_limit = match &raw.collect.label_limit {
        Some(n) if *n.get_ref() < 1 || *n.get_ref() > 1000 => {
            let msg = format!(
                "collect.label_limit must be between 1 and 1000, not {}",
                n.get_ref()
            );
            errors.push(error_at(Some(n.span().start), msg));
            20
        }
        Some(n) => usize::try_from(*n.get_ref()).unwrap_or(20),
        None => 20,
    };
    let d = |v: Option<HumanDuration>, default: Duration| v.map_or(default, |h| h.0);
    let c = &raw.collect;
    let collect = CollectConfig {
        database_interval: d(c.database_interval, Duration::from_secs(5)),
        patterns_interval: d(c.patterns_interval, Duration::from_secs(60)),
        backups_interval: d(c.backups_interval, Duration::from_secs(30)),
        integrity_interval: d(c.integrity_interval, Duration::from_secs(6 * 3600)),
        host_interval: d(c.host_interval, Duration::from_secs(10)),
        discover_interval: d(c.discover_interval, Duration::from_secs(30)),
        timeout: d(c.timeout, Duration::from_secs(60)),
        integrity_timeout: d(c.integrity_timeout, Duration::from_secs(3600)),
        label_limit,
    };

    let mut problems = Vec::new();
    let mut names = HashSet::new();
    let mut databases = Vec::new();
    for db in &raw.database {
        let name = db.name.get_ref();
        let at = Some(db.name.span().start);
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
        {
            let msg = format!("database name {name:?} must be non-empty and use only letters, digits, '_', '-' and '.'");
            errors.push(error_at(at, msg));
        } else if name.starts_with('.') {
            // Backups are named after the database: `.swarm-...` would be a
            // hidden file, which the backup folder's readers skip as a
            // temporary (never counted, verified, retained or restorable).
            let msg = format!(
                "database name {name:?} must not start with '.': its backups would be hidden files"
            );
            errors.push(error_at(at, msg));
        } else if !names.insert(name.clone()) {
            errors.push(error_at(
                at,
                format!("database name {name:?} is used twice"),
            ));
        }
        if db.path.get_ref().is_empty() {
            errors.push(error_at(
                Some(db.path.span().start),
                "database path is empty".into(),
            ));
        }
        let backup = db.backup.as_ref().map(|b| {
            // The levels each format knows (gzip's 0, "store", is no compression).
            let (levels, level) = match b.compression {
                Compression::Zstd => (1..=22, 3),
                Compression::Gzip => (1..=9, 6),
            };
            let retention = d(b.retention, Duration::from_secs(30 * DAY));
            let monthly_retention = d(b.monthly_retention, Duration::from_secs(365 * DAY));
            let offsite = b
                .offsite
                .as_ref()
                .map(|o| resolve_offsite(o, base, retention, monthly_retention, &mut problems));
            if b.incremental_interval
                .is_some_and(|i| i.0 < Duration::from_secs(1))
            {
                problems.push((
                    None,
                    "backup.incremental_interval must be at least 1s".to_string(),
                ));
            }
            BackupConfig {
                dir: resolve_path(&b.dir),
                retention,
                monthly_retention,
                max_age: d(b.max_age, Duration::from_secs(26 * 3600)),
                compression: b.compression,
                level: i32::try_from(ranged(
                    &b.level,
                    "backup.level",
                    levels,
                    level,
                    &mut problems,
                ))
                .unwrap_or(level as i32),
                verify: b.verify,
                verify_newest: usize::try_from(ranged(
                    &b.verify_newest,
                    "backup.verify_newest",
                    1..=1000,
                    3,
                    &mut problems,
                ))
                .unwrap_or(3),
                timeout: d(b.timeout, Duration::from_secs(3600)),
                offsite,
                incremental_interval: b.incremental_interval.map(|h| h.0),
                full_interval: d(b.full_interval, Duration::from_secs(DAY)),
            }
        });
        let p = &db.prune;
        let defaults = PruneConfig::default();
        let prune = PruneConfig {
            enabled: p.enabled,
            unused_after: d(p.unused_after, defaults.unused_after),
            unused_max_usage: ranged(
                &p.unused_max_usage,
                "prune.unused_max_usage",
                0..=i64::from(i32::MAX),
                defaults.unused_max_usage,
                &mut problems,
            ),
            low_confidence: ranged(
                &p.low_confidence,
                "prune.low_confidence",
                0.0..=1.0,
                defaults.low_confidence,
                &mut problems,
            ),
            never_used_after: d(p.never_used_after, defaults.never_used_after),
            trajectory_retention: d(p.trajectory_retention, defaults.trajectory_retention),
            verification_retention: d(p.verification_retention, defaults.verification_retention),
        };
        databases.push(DatabaseConfig {
            name: name.clone(),
            path: resolve_path(db.path.get_ref()),
            integrity_check: db.integrity_check,
            detail: db.detail,
            backup,
            archive_dir: db
                .archive_dir
                .as_deref()
                .map_or_else(|| base.join("archive").join(name), resolve_path),
            prune,
            tune: super::tune::resolve_tune(&db.tune, &mut problems),
            vacuum: resolve_vacuum(&db.vacuum, &mut problems),
            cleanup: resolve_cleanup(&db.cleanup, base, &mut problems),
        });
    }

    let names: Vec<String> = databases.iter().map(|d| d.name.clone()).collect();
    let commands = resolve_commands(&raw.command, base, &mut problems);
    let rules = resolve_rules(&raw.rule, &names, &commands, &mut problems);
    let schedules = resolve_schedules(&raw.schedule, &names, &commands, base, &mut problems);
    let responder = resolve_responder(&raw.responder, base, &mut problems);
    let queries = resolve_queries(&raw.query, &mut problems);
    errors.extend(problems.into_iter().map(|(at, msg)| error_at(at, msg)));

    match listen_address {
        Some(listen_address) if errors.is_empty() => Ok(Config {
            source: path.to_path_buf(),
            web: WebConfig {
                listen_address,
                token_file: raw.web.token_file.as_deref().map(resolve_path),
                api_token_file: raw.web.api_token_file.as_deref().map(resolve_path),
                config_file: raw.web.config_file.as_deref().map(resolve_path),
                max_connections: usize::try_from(max_connections).unwrap_or(512),
                header_read_timeout: d(raw.web.header_read_timeout, Duration::from_secs(10)),
                api_max_runs: u32::try_from(api_max_runs).unwrap_or(6),
                api_window: d(raw.web.api_window, Duration::from_secs(3600)),
                heartbeat_url,
                heartbeat_interval: d(raw.web.heartbeat_interval, Duration::from_secs(60)),
            },
            collect,
            host_filesystems: raw
                .host
                .filesystems
                .iter()
                .map(|p| resolve_path(p))
                .collect(),
            databases,
            responder,
            rules,
            commands,
            schedules,
            queries,
            discover,
            discovered,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}
