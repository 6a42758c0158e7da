//! caretaker's integration tests, in one binary: real SQLite files, real HTTP
//! on port 0, and the real Prometheus and Chromium where a test needs them.

mod alertmanager;
mod backup_actions;
mod backup_promises;
mod backups;
mod cli;
mod cli_promises;
mod command_promises;
mod common;
mod crash;
mod dashboards;
mod discovery_promises;
mod example_rules;
mod failures;
mod figures;
mod fleet_promises;
mod fuzz;
mod golden;
mod http;
mod integrity_promises;
mod landing_privacy;
mod load;
mod migrate;
mod moto;
mod network_promises;
mod offsite;
mod package_docs;
mod prometheus;
mod prune_actions;
mod reload;
mod responder;
mod responder_promises;
mod restore_promises;
mod runbook_sections;
mod runbook_steps;
mod status_promises;
