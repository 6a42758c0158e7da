//! Command-line interface: the subcommands and flags (Prometheus-style names).

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve metrics for the databases of a configuration file.
    Serve {
        #[arg(long = "config.file")]
        config_file: PathBuf,
        /// Overrides web.listen_address.
        #[arg(long = "web.listen-address")]
        listen_address: Option<SocketAddr>,
    },
    /// Create a demo database, backup folder and configuration, then serve them.
    Demo {
        #[arg(long, default_value = "caretaker-demo")]
        dir: PathBuf,
        #[arg(long = "web.listen-address")]
        listen_address: Option<SocketAddr>,
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
        /// backup, verify_backups, backup_retention, purge_expired, prune_patterns, vacuum, analyze,
        /// optimize, wal_checkpoint, integrity_check, cleanup_files or command:<name>.
        action: String,
        #[arg(long = "config.file")]
        config_file: PathBuf,
        /// The database; optional when only one is configured.
        #[arg(long)]
        database: Option<String>,
        /// Report what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
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
    /// Check a configuration file: exit 0, or print each error and exit 1.
    CheckConfig {
        #[arg(long = "config.file")]
        config_file: PathBuf,
    },
}
