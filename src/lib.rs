//! caretaker watches the SQLite memory databases of agent systems and
//! publishes what it sees for Prometheus.
//!
//! # Layout
//! - [`cli`]: the command line: the clap types, one function per subcommand
//!   and the one `match` that dispatches them; the only module that prints
//!   to the terminal or picks an exit code.
//! - [`config`]: the TOML configuration, validated with file, line and column.
//! - [`daemon`]: the long-running process: collectors, reload, HTTP server,
//!   and the loop that takes incremental snapshots.
//! - [`collector`]: one file per source of figures (database, patterns,
//!   activity, integrity, backups and their offsite copies and drills, host,
//!   process, the `[[query]]` probes) and the runner that calls them in the
//!   background.
//! - [`metrics`]: the snapshot the collectors fill and `/metrics` encodes.
//! - [`web`]: the HTTP routes, their one error type, the token and
//!   basic-auth checks, and the server loop with TLS from the web config
//!   file ([`web::security`]); they see the daemon only through [`web::AppHandle`].
//! - [`demo`]: the demo and benchmark database generator.
//! - [`responder`]: alerts and schedules turned into jobs: webhook intake,
//!   planning, safety rules, queue, executor, state database and audit, and
//!   runs by hand (`caretaker run`, `caretaker history`).
//! - [`actions`]: one file per maintenance action behind one trait, named
//!   in `actions::registry`.
//! - [`backups`]: the one place that knows what a backup is: a
//!   [`backups::BackupSet`] of one database's folder (names, checksums,
//!   listing, verification, retention, the pipeline that writes a backup,
//!   restore) and the chains of incremental snapshots on its backups
//!   ([`backups::chain`]). The collector, the backup actions, the snapshot
//!   loop and the CLI call it.
//! - [`progress`]: how long work (backups, verification, restore) reports its
//!   stages and bytes, to a bar or log lines the CLI chooses.
//! - [`migrate`]: schema migrations run safely (`caretaker migrate`): a
//!   backup, every file tried on a private copy, then the live database.
//! - [`report`]: `caretaker report`, the seeds' weekly and monthly reports
//!   (Markdown, or HTML with inline SVG charts) from the files alone.
//! - [`store`]: how every module opens SQLite files (monitoring read-only,
//!   maintenance read-write), checks them, and creates private files.

pub mod actions;
pub mod backups;
pub mod cli;
pub mod collector;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod metrics;
pub mod migrate;
pub mod progress;
pub mod report;
pub mod responder;
pub mod store;
pub mod web;
