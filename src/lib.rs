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
//! - [`docs_gen`]: the manual pages and shell completions the package ships.
//! - [`status`]: `caretaker status`, one line per database and an exit code
//!   for cron and check commands.
//! - [`restore`]: putting a backup back in place of a database (the CLI's
//!   `restore` and `backups list`); the backup actions live in [`actions`].

pub mod actions;
pub mod app;
pub mod cli;
pub mod collect_once;
pub mod collector;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod docs_gen;
pub mod maintenance_cli;
pub mod metrics;
pub mod responder;
pub mod restore;
pub mod status;
pub mod web;
