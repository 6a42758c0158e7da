//! The subcommands and flags (Prometheus-style names), as clap types.
//!
//! Public so that man pages and shell completions can be generated from
//! [`Cli`] with `clap::CommandFactory`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "caretaker",
    version,
    about = "Watches and maintains agent-memory SQLite databases for Prometheus"
)]
pub struct Cli {
    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter).
    #[arg(long = "log.level", default_value = "info", global = true)]
    pub log_level: String,
    /// Log format.
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackupsCommand {
    /// Every backup with its time, size and checksum state.
    List,
    /// Checksum, decompress, open and check every backup.
    Verify,
    /// Take one incremental snapshot now (the delta of the changed pages).
    Snapshot,
}

/// Where `backups` and `restore` find backups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum BackupSource {
    /// The backup folder.
    #[default]
    Local,
    /// `[database.backup.offsite]`: downloaded, decrypted and checked first.
    Offsite,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve metrics for the databases of a configuration file.
    Serve {
        #[arg(long = "config.file")]
        config_file: PathBuf,
        /// Overrides web.listen_address (host:port; the host may be a name such as localhost).
        #[arg(long = "web.listen-address", value_parser = listen_address)]
        listen_address: Option<SocketAddr>,
        /// The Prometheus exporter toolkit's web config file (YAML: TLS, client
        /// certificates, basic-auth users); overrides web.config_file.
        #[arg(long = "web.config.file")]
        web_config_file: Option<PathBuf>,
    },
    /// Create a demo database, backup folder and configuration, then serve them.
    Demo {
        #[arg(long, default_value = "caretaker-demo")]
        dir: PathBuf,
        #[arg(long = "web.listen-address", value_parser = listen_address)]
        listen_address: Option<SocketAddr>,
        /// The Prometheus exporter toolkit's web config file (YAML: TLS, client
        /// certificates, basic-auth users); overrides web.config_file.
        #[arg(long = "web.config.file")]
        web_config_file: Option<PathBuf>,
        /// Patterns in the generated database.
        #[arg(long, default_value_t = 5000)]
        patterns: u64,
        /// Approximate size of each pattern's pattern_data.
        #[arg(long = "pattern-bytes", default_value_t = 200)]
        pattern_bytes: usize,
        /// Create the files and exit without serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// Run one action now, through the same locks, breaker and audit as the daemon.
    Run {
        /// backup, verify_backups, backup_retention, purge_expired, prune_patterns, tune_patterns,
        /// vacuum, analyze, optimize, wal_checkpoint, integrity_check, cleanup_files, restore_drill
        /// or command:<name>.
        action: String,
        #[arg(long = "config.file")]
        config_file: PathBuf,
        /// The database; optional when only one is configured.
        #[arg(long)]
        database: Option<String>,
        /// Report what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// vacuum only: run even outside `[database.vacuum] window` (audited).
        #[arg(long)]
        ignore_window: bool,
    },
    /// The seeds' weekly or monthly report of a database (every database
    /// without `--database`), from its file and caretaker's history; no
    /// daemon needed.
    Report {
        #[arg(long = "config.file")]
        config_file: PathBuf,
        #[arg(long)]
        database: Option<String>,
        #[arg(long, value_enum)]
        period: crate::report::Period,
        /// `html`: one self-contained file with inline SVG charts.
        #[arg(long, value_enum, default_value = "markdown")]
        format: crate::report::render::Format,
        /// Write here (a temporary file, synced, then renamed) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Show the latest jobs from caretaker's state database.
    History {
        #[arg(long = "config.file")]
        config_file: PathBuf,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        database: Option<String>,
    },
    /// Bring back a backup: checksum and integrity checked first, the current
    /// files kept in `<db>.before-restore-<UTC time>/`, put back if the result fails.
    Restore {
        #[arg(long = "config.file")]
        config_file: PathBuf,
        #[arg(long)]
        database: Option<String>,
        /// A backup file to restore instead of the newest that verifies.
        #[arg(long, conflicts_with_all = ["before", "at"])]
        backup: Option<PathBuf>,
        /// The newest backup taken before this time (RFC 3339 with any offset,
        /// e.g. 2026-11-01T12:00:00Z or 2026-11-01T13:00:00+01:00).
        #[arg(long, conflicts_with = "at")]
        before: Option<String>,
        /// The newest state taken at or before this time (RFC 3339), rebuilt
        /// from a full backup and its chain of incremental snapshots.
        #[arg(long)]
        at: Option<String>,
        /// Restore even while other processes have the database open.
        #[arg(long)]
        force: bool,
        /// Bring back only this table, in one transaction, while the
        /// database stays in use; its current rows are archived first.
        #[arg(long, conflicts_with = "force")]
        table: Option<String>,
        /// With --table: `replace` the table, or `merge` in only the rows
        /// whose primary key is missing.
        #[arg(long, value_enum, requires = "table")]
        mode: Option<crate::backups::restore::TableMode>,
        /// `offsite`: restore from `[database.backup.offsite]` (downloaded
        /// into the backup folder first; `--backup` then names a remote backup).
        #[arg(long, value_enum, default_value_t)]
        from: BackupSource,
    },
    /// List or verify a database's backups.
    Backups {
        #[arg(value_enum)]
        command: BackupsCommand,
        #[arg(long = "config.file")]
        config_file: PathBuf,
        #[arg(long)]
        database: Option<String>,
        /// `offsite`: the backups in `[database.backup.offsite]`.
        #[arg(long, value_enum, default_value_t)]
        from: BackupSource,
    },
    /// Load archives written by prune_patterns, purge_expired or tune_patterns
    /// back into their database, all in one transaction.
    RestoreArchive {
        #[arg(long = "config.file")]
        config_file: PathBuf,
        #[arg(long)]
        database: Option<String>,
        /// The archive files (`*.jsonl.zst`); a tune_patterns run names its own.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Diagnostic: run each collector once and print its duration as JSON.
    #[command(hide = true)]
    Collect {
        #[arg(long = "config.file")]
        config_file: PathBuf,
        /// Collect once and exit (the only mode; required so the intent is explicit).
        #[arg(long, required = true)]
        once: bool,
        /// Collectors to run, comma separated; default: the seeds' figures
        /// (database, patterns, activity). `all` runs every collector.
        #[arg(long, value_delimiter = ',', default_values_t = super::collect::SEED_FIGURES.map(String::from))]
        collectors: Vec<String>,
    },
    /// One line per database: up, size, newest backup, integrity, breakers,
    /// failed jobs; exit 0 all well, 1 something needs a person, 2 cannot tell.
    Status(super::status::StatusArgs),
    /// Write the manual pages and shell completions (packaging).
    #[command(hide = true)]
    GenerateDocs(super::generate_docs::GenerateDocsArgs),
    /// Apply a folder's pending `*.sql` migrations: a verified backup first,
    /// every file tried on a private copy, then the live database.
    Migrate {
        #[arg(long = "config.file")]
        config_file: PathBuf,
        /// The database; optional when only one is configured.
        #[arg(long)]
        database: Option<String>,
        /// The folder of migration files (`*.sql`; `NAME.down.sql` is NAME's rollback).
        dir: PathBuf,
        /// Roll back the applied migration NAME with `NAME.down.sql`.
        #[arg(long, value_name = "NAME")]
        rollback: Option<String>,
        /// List the files that would run and try them on a copy; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// How long each file waits for the database's write lock (e.g. 5s).
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        busy_timeout: std::time::Duration,
    },
    /// Check a configuration file: exit 0, or print each error and exit 1.
    CheckConfig {
        #[arg(long = "config.file")]
        config_file: PathBuf,
        /// The Prometheus exporter toolkit's web config file (YAML: TLS, client
        /// certificates, basic-auth users); checked instead of web.config_file.
        #[arg(long = "web.config.file")]
        web_config_file: Option<PathBuf>,
    },
}

/// `--web.listen-address`: an address, or a host name that resolves.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    crate::config::resolve_listen_address(text)
}
