//! Jobs: recording them (a key's UNIQUE constraint keeps one job per alert
//! episode and action), reading them back, ending them, and the history of
//! attempts that cooldowns and breakers are computed from.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::StateStore;
use crate::actions::kind::ActionKind;
use crate::responder::job::{JobSource, JobStatus, SkipReason};
use crate::responder::safety::Attempt;

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    pub id: i64,
    pub key: String,
    pub source: JobSource,
    pub rule: Option<String>,
    /// The action's name as recorded (it may name an action this version
    /// or configuration no longer has: such a job is skipped).
    pub action: String,
    pub database: String,
    pub alertname: Option<String>,
    pub fingerprint: Option<String>,
    pub starts_at: Option<String>,
    /// Which bearer token requested it (`webhook_token`, `api_token`); none for schedules and the CLI.
    pub credential: Option<String>,
    pub dry_run: bool,
    pub cooldown_seconds: f64,
    /// Allow-listed alert labels, JSON, for `command` actions.
    pub labels: Option<String>,
    /// A run by hand that overrides `[database.vacuum] window`.
    pub ignore_window: bool,
    pub status: JobStatus,
    pub reason: Option<SkipReason>,
    pub created_at: f64,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub outcome: Option<serde_json::Value>,
    pub error: Option<String>,
    pub resolved_at: Option<f64>,
}

/// A job to record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewJob {
    pub key: String,
    pub source: JobSource,
    pub credential: Option<&'static str>,
    pub rule: Option<String>,
    pub action: String,
    pub database: String,
    pub alertname: Option<String>,
    pub fingerprint: Option<String>,
    pub starts_at: Option<String>,
    pub dry_run: bool,
    pub cooldown: Duration,
    pub labels: Option<String>,
    /// A run by hand that overrides `[database.vacuum] window`.
    pub ignore_window: bool,
}

/// What happened when a job was recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    New(i64),
    /// The key exists: the existing job's id, status and end time.
    Duplicate(i64, JobStatus, Option<f64>),
}

/// A filter for listing jobs.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub action: Option<String>,
    pub database: Option<String>,
    /// A status word, as a client wrote it (an unknown word matches nothing).
    pub status: Option<String>,
    pub limit: usize,
}

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let outcome: Option<String> = r.get("outcome")?;
    Ok(JobRecord {
        id: r.get("id")?,
        key: r.get("key")?,
        source: r.get("source")?,
        rule: r.get("rule")?,
        action: r.get("action")?,
        database: r.get("database")?,
        alertname: r.get("alertname")?,
        fingerprint: r.get("fingerprint")?,
        starts_at: r.get("starts_at")?,
        credential: r.get("credential")?,
        dry_run: r.get("dry_run")?,
        cooldown_seconds: r.get("cooldown_seconds")?,
        labels: r.get("labels")?,
        ignore_window: r.get("ignore_window")?,
        status: r.get("status")?,
        reason: r.get("reason")?,
        created_at: r.get("created_at")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
        error: r.get("error")?,
        resolved_at: r.get("resolved_at")?,
    })
}

impl StateStore {
    pub fn job(&self, id: i64) -> rusqlite::Result<Option<JobRecord>> {
        self.conn()
            .query_row("SELECT * FROM jobs WHERE id = ?1", [id], job_from_row)
            .optional()
    }

    /// Jobs accepted but not started (re-queued after a restart). A job of
    /// `caretaker run` belongs to its own process: when that process died
    /// before starting it, nobody is waiting for it and the daemon must not
    /// run it later on its behalf.
    pub fn queued(&self) -> rusqlite::Result<Vec<i64>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT id FROM jobs WHERE status = ?1 AND source <> ?2 ORDER BY id")?;
        let ids = stmt.query_map(params![JobStatus::Queued, JobSource::Cli], |r| r.get(0))?;
        ids.collect()
    }

    /// Ends a job: `succeeded`, `failed` or `skipped` (with a reason).
    pub fn finish(
        &self,
        id: i64,
        status: JobStatus,
        reason: Option<SkipReason>,
        outcome: Option<&serde_json::Value>,
        error: Option<&str>,
        now: f64,
    ) -> rusqlite::Result<()> {
        self.conn().execute(
            "UPDATE jobs SET status = ?2, reason = ?3, outcome = ?4, error = ?5, finished_at = ?6 WHERE id = ?1",
            params![id, status, reason, outcome.map(|o| o.to_string()), error, now],
        )?;
        Ok(())
    }

    /// The latest attempts of `action` on `database`, newest first.
    pub fn attempts(
        &self,
        action: &str,
        database: &str,
        limit: usize,
    ) -> rusqlite::Result<Vec<Attempt>> {
        attempts_in(&self.conn(), action, database, limit)
    }

    /// Creation times of the API's jobs for `action` on `database` since `since`.
    pub fn api_runs_since(
        &self,
        action: &str,
        database: &str,
        since: f64,
    ) -> rusqlite::Result<Vec<f64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT created_at FROM jobs WHERE action = ?1 AND database = ?2
               AND source = ?4 AND created_at >= ?3",
        )?;
        let rows = stmt.query_map(params![action, database, since, JobSource::Api], |r| {
            r.get(0)
        })?;
        rows.collect()
    }

    /// Marks the succeeded jobs of one alert episode as resolved; returns their actions.
    pub fn resolve_episode(
        &self,
        fingerprint: &str,
        starts_at: &str,
        now: f64,
    ) -> rusqlite::Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "UPDATE jobs SET resolved_at = ?3 WHERE fingerprint = ?1 AND starts_at = ?2
               AND resolved_at IS NULL AND status = ?4 RETURNING action",
        )?;
        let rows = stmt.query_map(
            params![fingerprint, starts_at, now, JobStatus::Succeeded],
            |r| r.get(0),
        )?;
        rows.collect()
    }

    /// How many jobs exist for keys starting with `prefix` (retries of one episode).
    pub fn count_with_prefix(&self, prefix: &str) -> rusqlite::Result<i64> {
        self.conn().query_row(
            "SELECT COUNT(*) FROM jobs WHERE substr(key, 1, length(?1)) = ?1",
            [prefix],
            |r| r.get(0),
        )
    }

    pub fn jobs(&self, filter: &JobFilter) -> rusqlite::Result<Vec<JobRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT * FROM jobs WHERE (?1 IS NULL OR action = ?1) AND (?2 IS NULL OR database = ?2)
               AND (?3 IS NULL OR status = ?3) ORDER BY id DESC LIMIT ?4",
        )?;
        let limit = filter.limit.min(10_000) as i64;
        let rows = stmt.query_map(
            params![filter.action, filter.database, filter.status, limit],
            job_from_row,
        )?;
        rows.collect()
    }

    /// The latest finished (succeeded or failed) job of each of `actions` and
    /// each database, among those that finished after `since`, by any process.
    pub fn latest_finished(
        &self,
        actions: &[ActionKind],
        since: f64,
    ) -> rusqlite::Result<Vec<JobRecord>> {
        let conn = self.conn();
        // SQLite takes the bare columns of a MAX() aggregate from the row holding the maximum.
        let mut stmt = conn.prepare_cached(
            "SELECT *, MAX(finished_at) FROM jobs
             WHERE action IN (SELECT value FROM json_each(?1)) AND status IN (?3, ?4)
               AND finished_at > ?2
             GROUP BY action, database ORDER BY finished_at",
        )?;
        let names: Vec<String> = actions.iter().map(ActionKind::to_string).collect();
        let actions = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
        let rows = stmt.query_map(
            params![actions, since, JobStatus::Succeeded, JobStatus::Failed],
            job_from_row,
        )?;
        rows.collect()
    }
}

/// See [`StateStore::attempts`]; also read inside [`StateStore::claim`]'s transaction.
pub(super) fn attempts_in(
    conn: &Connection,
    action: &str,
    database: &str,
    limit: usize,
) -> rusqlite::Result<Vec<Attempt>> {
    let mut stmt = conn.prepare_cached(
        "SELECT started_at, status = ?4, source IN (?5, ?6) FROM jobs
         WHERE action = ?1 AND database = ?2 AND started_at IS NOT NULL
           AND status IN (?7, ?4, ?8, ?9) AND dry_run = 0
         ORDER BY started_at DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![
            action,
            database,
            limit as i64,
            JobStatus::Succeeded,
            JobSource::Api,
            JobSource::Cli,
            JobStatus::Running,
            JobStatus::Failed,
            JobStatus::Interrupted,
        ],
        |r| {
            Ok(Attempt {
                at: r.get(0)?,
                ok: r.get(1)?,
                by_hand: r.get(2)?,
            })
        },
    )?;
    rows.collect()
}

/// Inserts jobs, keeping the existing job of a key that is already there.
pub(in crate::responder) fn insert_jobs(
    tx: &Connection,
    jobs: &[NewJob],
    now: f64,
) -> rusqlite::Result<Vec<Recorded>> {
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        let inserted = tx.prepare_cached(
            "INSERT OR IGNORE INTO jobs (key, source, rule, action, database, alertname, fingerprint, starts_at,
               dry_run, cooldown_seconds, labels, status, created_at, credential, ignore_window)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?15, ?12, ?13, ?14)",
        )?
        .execute(params![
            j.key, j.source, j.rule, j.action, j.database, j.alertname, j.fingerprint, j.starts_at,
            j.dry_run, j.cooldown.as_secs_f64(), j.labels, now, j.credential, j.ignore_window,
            JobStatus::Queued
        ])?;
        if inserted == 1 {
            out.push(Recorded::New(tx.last_insert_rowid()));
        } else {
            let (id, status, finished) = tx.query_row(
                "SELECT id, status, finished_at FROM jobs WHERE key = ?1",
                [&j.key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            out.push(Recorded::Duplicate(id, status, finished));
        }
    }
    Ok(out)
}
