//! Starting a job: the cooldown and breaker decision and the mark `running`
//! in one write transaction of the state database.
//!
//! Read apart, two jobs could both read the history before either had
//! started, and both pass a cooldown (ten simultaneous alerts ran
//! `integrity_check` twice). `BEGIN IMMEDIATE` takes the state database's
//! write lock first: within this process the connection's mutex orders the
//! jobs, across processes SQLite's lock does (waited for with the busy
//! timeout), and a job that comes second sees the first one running.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{attempts_in, StateStore};
use crate::responder::job::JobStatus;
use crate::responder::safety::Attempt;

/// Start times and success of the latest attempts, newest first.
pub type Attempts = Vec<Attempt>;

/// What [`StateStore::claim`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim<H> {
    /// The job is now `running`; the attempts before it.
    Started(Attempts),
    /// The decision held the job back; it is still `queued`.
    Held(H, Attempts),
    /// The job is no longer queued (another worker or process has it).
    NotQueued,
}

impl StateStore {
    /// Marks job `id` running unless `hold`, given the latest attempts of
    /// `action` on `database`, says why it must not run.
    pub fn claim<H>(
        &self,
        id: i64,
        action: &str,
        database: &str,
        now: f64,
        hold: impl FnOnce(&[Attempt]) -> Option<H>,
    ) -> rusqlite::Result<Claim<H>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let status: Option<JobStatus> = tx
            .query_row("SELECT status FROM jobs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        if status != Some(JobStatus::Queued) {
            return Ok(Claim::NotQueued);
        }
        let attempts = attempts_in(&tx, action, database, 100)?;
        if let Some(h) = hold(&attempts) {
            return Ok(Claim::Held(h, attempts));
        }
        tx.execute(
            "UPDATE jobs SET status = ?4, started_at = ?2, pid = ?3 WHERE id = ?1",
            params![id, now, std::process::id(), JobStatus::Running],
        )?;
        tx.commit()?;
        Ok(Claim::Started(attempts))
    }
}
