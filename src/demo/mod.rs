//! `caretaker demo`: a ready-to-watch folder with a realistic memory database,
//! a backup folder, a token and a configuration, so the first command shows
//! caretaker working without any setup.

pub mod generate;
mod vocabulary;

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::RngCore;

use crate::config::DEFAULT_LISTEN_ADDRESS;

/// What the demo folder should hold.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub patterns: u64,
    pub pattern_bytes: usize,
    pub listen_address: Option<SocketAddr>,
}

/// Creates what is missing in `dir` and returns the configuration file's path.
/// Existing files are kept, so running the demo twice reuses the first one.
pub fn prepare(dir: &Path, options: &DemoOptions) -> anyhow::Result<PathBuf> {
    // The backup folder holds copies of the agents' memory: private, as
    // every folder caretaker creates.
    crate::store::private::create_dir_all(&dir.join("backups"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let db = dir.join("memory.db");
    if !db.exists() {
        let opts = generate::GenerateOptions {
            patterns: options.patterns,
            pattern_bytes: options.pattern_bytes,
            ..Default::default()
        };
        let summary = generate::generate(&db, &opts)
            .with_context(|| format!("generating {}", db.display()))?;
        tracing::info!(path = %db.display(), patterns = summary.patterns, "demo database created");
    }
    let token = dir.join("token");
    if !token.exists() {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_private(&token, &format!("{hex}\n"))
            .with_context(|| format!("writing {}", token.display()))?;
    }
    let recipient = demo_identity(&dir.join("backup-identity.txt"))?;
    let config = dir.join("caretaker.toml");
    if !config.exists() {
        // No object store is given to the demo: its offsite copies go to a
        // folder beside it (`file://`), encrypted like any other.
        let offsite = std::path::absolute(dir.join("offsite"))
            .with_context(|| format!("resolving {}", dir.display()))?;
        let offsite_url = toml::Value::String(format!("file://{}", offsite.display()));
        let listen = options
            .listen_address
            .map_or_else(|| DEFAULT_LISTEN_ADDRESS.to_string(), |a| a.to_string());
        let responder = demo_responder(&listen);
        let text = format!(
            r#"# caretaker demo configuration: see README.md for every key.
[web]
listen_address = "{listen}"
token_file = "token"

{responder}[[database]]
name = "memory"
path = "memory.db"
[database.backup]
dir = "backups"
retention = "30d"
# A delta of the changed pages every minute: restore --at any moment.
incremental_interval = "1m"
full_interval = "24h"
# No object store is given to the demo: its offsite copies go to the
# folder beside it, encrypted to the demo's own age identity.
[database.backup.offsite]
url = {offsite_url}
encrypt_to = ["{recipient}"]
decrypt_identity_file = "backup-identity.txt"
# The demo may prune, tune and vacuum its own database; all are off by default.
[database.prune]
enabled = true
[database.tune]
enabled = true
[database.vacuum]
enabled = true

[[rule]]
name = "purge-expired"
matchers = ['alertname="CaretakerExpiredEntriesHigh"']
actions = ["purge_expired"]
cooldown = "10m"

[[rule]]
name = "backup"
matchers = ['alertname=~"CaretakerBackup(TooOld|Missing|VerificationFailed)"']
actions = ["backup"]
cooldown = "1h"

[[rule]]
name = "recovery-point"
matchers = ['alertname="CaretakerRecoveryPointTooOld"']
actions = ["backup"]
cooldown = "30m"

[[rule]]
name = "offsite-upload"
matchers = ['alertname="CaretakerOffsiteBackupTooOld"']
actions = ["backup"]
cooldown = "1h"

[[rule]]
name = "restore-drill"
matchers = ['alertname="CaretakerRestoreDrillFailed"']
actions = ["backup", "restore_drill"]
cooldown = "1d"

[[rule]]
name = "first-drill"
matchers = ['alertname="CaretakerRestoreNeverDrilled"']
actions = ["restore_drill"]
cooldown = "1d"

[[rule]]
name = "checkpoint"
matchers = ['alertname="CaretakerWalLarge"']
actions = ["wal_checkpoint"]

[[rule]]
name = "integrity"
matchers = ['alertname="CaretakerIntegrityCheckStale"']
actions = ["integrity_check"]

[[rule]]
name = "vacuum"
matchers = ['alertname="CaretakerDatabaseFragmented"']
actions = ["vacuum"]
cooldown = "1d"

# The runbooks' cron jobs (UTC): daily backup and purge, weekly maintenance
# and a restore drill of the newest backups.
[[schedule]]
name = "daily"
cron = "0 2 * * *"
actions = ["backup", "purge_expired", "verify_backups"]

[[schedule]]
name = "weekly"
cron = "0 3 * * Sun"
actions = ["prune_patterns", "vacuum", "analyze", "restore_drill"]

[[rule]]
name = "prune"
matchers = ['alertname=~"CaretakerPruneCandidatesHigh|CaretakerOrphanedEmbeddings"']
actions = ["prune_patterns"]
cooldown = "1d"
{SEED_PROBES}"#
        );
        std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    }
    Ok(config)
}

/// The `[[query]]` probes caretaker ships (in the demo and in
/// `config/caretaker.toml`): the seeds' common lookups, each timed and
/// checked for a plan without an index (seed 001, "Query Performance
/// Monitoring" and "Index Optimization").
pub const SEED_PROBES: &str = r#"
# The seeds' common queries, timed (CaretakerQuerySlow) and checked for full scans.
[[query]]
name = "pattern_lookup"
sql = "SELECT id FROM patterns WHERE type = 'code_review' ORDER BY confidence DESC LIMIT 10"
interval = "30s"
timeout = "1s"

[[query]]
name = "memory_lookup"
sql = "SELECT value FROM memory_entries WHERE namespace = 'default' AND key = 'session'"
interval = "30s"
timeout = "1s"

[[query]]
name = "recent_trajectories"
sql = "SELECT id, outcome FROM task_trajectories ORDER BY created_at DESC LIMIT 20"
interval = "30s"
timeout = "1s"
"#;

/// The demo's `[responder]` section: the `instance` names Prometheus scrapes
/// it by (`caretaker:<port>` in docker-compose.yml, `localhost` and
/// `127.0.0.1` on this host), so the demo never ignores its own alerts. On
/// port 0 the bound port is not known yet: the defaults follow it.
fn demo_responder(listen: &str) -> String {
    let port = listen.rsplit(':').next().unwrap_or("0");
    if port == "0" {
        return String::new();
    }
    format!(
        "[responder]\n# Alerts whose instance label names another caretaker are ignored.\ninstance = [\"caretaker:{port}\", \"localhost:{port}\", \"127.0.0.1:{port}\"]\n\n"
    )
}

/// The demo's age identity at `path` (created when missing), and its
/// recipient: what the demo's offsite copies are encrypted to.
fn demo_identity(path: &Path) -> anyhow::Result<String> {
    use age::secrecy::ExposeSecret;
    use std::str::FromStr;
    if !path.exists() {
        let identity = age::x25519::Identity::generate();
        write_private(path, &format!("{}\n", identity.to_string().expose_secret()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let key = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .with_context(|| format!("{} holds no age identity", path.display()))?;
    let identity = age::x25519::Identity::from_str(key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(identity.to_public().to_string())
}

/// Takes a first backup when the folder has none, and drills it, so the
/// demo starts with every backup and drill figure populated.
pub fn first_backup(config: &crate::config::Config) -> anyhow::Result<()> {
    use crate::actions::{backup::Backup, restore_drill::RestoreDrill, Action, ActionContext};
    for db in &config.databases {
        let Some(backup) = &db.backup else { continue };
        let empty = std::fs::read_dir(&backup.dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true);
        if empty {
            let ctx = ActionContext {
                database: db,
                dry_run: false,
                deadline: std::time::Instant::now() + backup.timeout,
                now: std::time::SystemTime::now(),
                stop: Default::default(),
                progress: Default::default(),
            };
            let outcome = Backup
                .run(&ctx)
                .with_context(|| format!("first backup of {}", db.name))?;
            tracing::info!(database = %db.name, summary = %outcome.summary, "demo backup taken");
            match RestoreDrill.run(&ctx) {
                Ok(drill) => {
                    tracing::info!(database = %db.name, summary = %drill.summary, "demo restore drill")
                }
                Err(e) => {
                    tracing::warn!(database = %db.name, error = %e, "demo restore drill failed")
                }
            }
        }
    }
    Ok(())
}

/// What to paste to see an alert become an action.
pub fn sample_alert_command(dir: &Path, listen: &str) -> String {
    let token = std::fs::read_to_string(dir.join("token")).unwrap_or_default();
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    format!(
        "curl -sS -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n  --data '{{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{{\"status\":\"firing\",\"labels\":{{\"alertname\":\"CaretakerExpiredEntriesHigh\",\"database\":\"memory\",\"severity\":\"warning\"}},\"startsAt\":\"{now}\"}}]}}' \\\n  http://{listen}/hooks/alertmanager",
        token = token.trim()
    )
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
