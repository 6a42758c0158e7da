//! caretaker's integration tests, in one binary: real SQLite files, real HTTP
//! on port 0, and the real Prometheus and Chromium where a test needs them.

mod alertmanager;
mod backup_actions;
mod backups;
mod cli;
mod common;
mod crash;
mod dashboards;
mod failures;
mod figures;
mod fuzz;
mod http;
mod integrity_promises;
mod load;
mod prometheus;
mod prune_actions;
mod reload;
mod responder;
