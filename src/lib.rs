//! caretaker watches the SQLite memory databases of agent systems and
//! publishes what it sees for Prometheus.
//!
//! # Layout
//! - [`cli`]: the command line: the clap types, one function per subcommand
//!   and the one `match` that dispatches them; the only module that prints
//!   to the terminal or picks an exit code.
//! - [`config`]: the TOML configuration, validated with file, line and column.
//! - [`daemon`]: the long-running process: collectors, reload, HTTP server.
//! - [`collector`]: one file per source of figures (database, patterns,
//!   activity, integrity, backups, host, process) and the runner that calls
//!   them in the background.
//! - [`metrics`]: the snapshot the collectors fill and `/metrics` encodes.
//! - [`web`]: the HTTP routes, their one error type and the token check;
//!   they see the daemon only through [`web::AppHandle`].
//! - [`demo`]: the demo and benchmark database generator.
//! - [`restore`]: putting a backup back in place of a database (the CLI's
//!   `restore` and `backups list`); the backup actions live in [`actions`].
//! - [`responder`]: alerts and schedules turned into jobs: webhook intake,
//!   planning, safety rules, queue, executor, state database and audit, and
//!   runs by hand (`caretaker run`, `caretaker history`).
//! - [`actions`]: one file per maintenance action behind one trait, named
//!   in `actions::registry`.

pub mod actions;
pub mod cli;
pub mod collector;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod metrics;
pub mod responder;
pub mod restore;
pub mod web;
