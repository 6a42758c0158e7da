//! Collectors: one file per source of figures, each behind [`Collector`].
//!
//! A collector does blocking work (SQLite queries, directory walks, hashing,
//! sysinfo refreshes) and returns a [`MetricSet`]; the [`runner`] calls it on
//! its own interval on one of a few worker threads, with a deadline, and
//! records the result and the collector's own health in the snapshot. A failure becomes
//! `caretaker_collector_success 0`, never a failed scrape.

pub mod activity;
pub mod backups;
pub mod database;
pub mod drills;
pub mod expiry;
pub mod groups;
pub mod host;
pub mod integrity;
pub mod labels;
pub mod last_pass;
pub mod offsite;
pub mod pattern_clock;
mod pattern_scan;
pub mod patterns;
mod pool;
pub mod process;
pub mod query;
pub mod runner;

use std::time::Instant;

use crate::metrics::MetricSet;

/// Why a collection failed. The text goes to the log, never into a label.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// One source of figures.
pub trait Collector: Send + Sync + 'static {
    /// The `collector` label value.
    fn name(&self) -> &'static str;

    /// Collects once. Blocking; must give up once `deadline` has passed.
    fn collect(&self, deadline: Instant) -> Result<MetricSet, CollectError>;
}
