//! caretaker watches the SQLite memory databases of agent systems and
//! publishes what it sees for Prometheus.
//!
//! # Layout
//! - [`cli`]: the command line; [`app`]: what each subcommand does.
//! - [`collect_once`]: `caretaker collect --once`, one timed collection
//!   printed as JSON (benchmarks, slow-collection reports).
//! - [`config`]: the TOML configuration, validated with file, line and column.
//! - [`daemon`]: the long-running process: collectors, reload, HTTP server.
//! - [`collector`]: one file per source of figures (database, patterns,
//!   activity, integrity, backups, host, process) and the runner that calls
//!   them in the background.
//! - [`metrics`]: the snapshot the collectors fill and `/metrics` encodes.
//! - [`web`]: the HTTP routes.
//! - [`demo`]: the demo and benchmark database generator.
//! - [`backups`]: the one place that knows what a backup is: a
//!   [`backups::BackupSet`] of one database's folder (names, checksums,
//!   listing, verification, retention, the pipeline that writes a backup,
//!   restore). The collector, the backup actions and the CLI call it.
//! - [`store`]: how every module opens SQLite files (monitoring read-only,
//!   maintenance read-write), checks them, and creates private files.

pub mod actions;
pub mod app;
pub mod backups;
pub mod cli;
pub mod collect_once;
pub mod collector;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod maintenance_cli;
pub mod metrics;
pub mod responder;
pub mod store;
pub mod web;
