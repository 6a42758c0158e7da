//! caretaker's own state database: every job and every decision, durably.
//!
//! A separate SQLite file, never an application database. The webhook records
//! a job here before answering 202, so an accepted alert survives a crash; the
//! job key's UNIQUE constraint is what makes repeats, retries and HA duplicates
//! run once. Cooldowns and breakers are computed from the job history, so they
//! survive restarts without state of their own.
//!
//! - this file: the store, its connection and group commit;
//! - `state_open.rs`: opening, the schema and its migrations, interrupted jobs;
//! - `state_jobs.rs`: jobs, their history and the attempts the breaker reads;
//! - `state_claim.rs`: starting a job under the cooldown and breaker decision;
//! - `state_audit.rs`: the audit trail and the pruning of old history;
//! - `state_files.rs`: a private file, and patience with other processes.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::commit::GroupCommit;

/// The store, one connection behind a mutex (writes are small and short).
pub struct StateStore {
    conn: Arc<Mutex<Connection>>,
    commits: GroupCommit,
}

impl StateStore {
    /// Opens (creating) the state database and marks jobs that were running
    /// when the previous process stopped as interrupted.
    pub fn open(path: &Path, now: f64) -> rusqlite::Result<(StateStore, usize)> {
        files::prepare(path)?;
        let (conn, interrupted) = files::retry_while_busy(|| open::connection(path, now))?;
        let conn = Arc::new(Mutex::new(conn));
        let commits = GroupCommit::start(conn.clone()).map_err(|e| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(format!("cannot start the state writer: {e}")),
            )
        })?;
        Ok((StateStore { conn, commits }, interrupted))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records jobs and audit events durably, in one transaction (shared with
    /// concurrent callers: see [`GroupCommit`]).
    pub fn record(
        &self,
        jobs: &[NewJob],
        events: &[AuditEvent],
        now: f64,
    ) -> rusqlite::Result<Vec<Recorded>> {
        if jobs.is_empty() && events.is_empty() {
            // Nothing to write: no transaction, no fsync.
            return Ok(Vec::new());
        }
        self.commits.record(jobs, events, now)
    }

    /// [`Self::record`] without blocking a thread: for request handlers.
    pub async fn record_async(
        &self,
        jobs: Vec<NewJob>,
        events: Vec<AuditEvent>,
        now: f64,
    ) -> rusqlite::Result<Vec<Recorded>> {
        if jobs.is_empty() && events.is_empty() {
            return Ok(Vec::new());
        }
        self.commits.record_async(jobs, events, now).await
    }
}

#[path = "state_audit.rs"]
mod audit;
#[path = "state_claim.rs"]
mod claim;
#[path = "state_files.rs"]
mod files;
#[path = "state_jobs.rs"]
mod jobs;
#[path = "state_open.rs"]
mod open;

pub(super) use audit::insert_audit;
pub use audit::AuditEvent;
pub use claim::{Attempts, Claim};
use jobs::attempts_in;
pub(super) use jobs::insert_jobs;
pub use jobs::{JobFilter, JobRecord, NewJob, Recorded};

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
