//! caretaker's own state database: every job and every decision, durably.
//!
//! A separate SQLite file, never an application database. The webhook records
//! a job here before answering 202, so an accepted alert survives a crash; the
//! job key's UNIQUE constraint is what makes repeats, retries and HA duplicates
//! run once. Cooldowns and breakers are computed from the job history, so they
//! survive restarts without state of their own.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::commit::GroupCommit;
use super::safety::Attempt;

const SCHEMA: &str = include_str!("state_schema.sql");

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    pub id: i64,
    pub key: String,
    pub source: String,
    pub rule: Option<String>,
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
    pub status: String,
    pub reason: Option<String>,
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
    pub source: &'static str,
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

/// One audited decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditEvent {
    pub at: f64,
    pub event: String,
    pub alertname: Option<String>,
    pub fingerprint: Option<String>,
    pub rule: Option<String>,
    pub action: Option<String>,
    pub database: Option<String>,
    pub job_id: Option<i64>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// Which bearer token the request behind this decision presented.
    pub credential: Option<String>,
}

/// What happened when a job was recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    New(i64),
    /// The key exists: the existing job's id, status and end time.
    Duplicate(i64, String, Option<f64>),
}

/// A filter for listing jobs.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub action: Option<String>,
    pub database: Option<String>,
    pub status: Option<String>,
    pub limit: usize,
}

/// The store, one connection behind a mutex (writes are small and short).
pub struct StateStore {
    conn: Arc<Mutex<Connection>>,
    commits: GroupCommit,
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
    /// Opens (creating) the state database and marks jobs that were running
    /// when the previous process stopped as interrupted.
    pub fn open(path: &Path, now: f64) -> rusqlite::Result<(StateStore, usize)> {
        files::prepare(path)?;
        let (conn, interrupted) = files::retry_while_busy(|| open_connection(path, now))?;
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

    pub fn audit(&self, event: &AuditEvent) -> rusqlite::Result<()> {
        insert_audit(&self.conn(), event)
    }

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
        let mut stmt = conn.prepare(
            "SELECT id FROM jobs WHERE status = 'queued' AND source <> 'cli' ORDER BY id",
        )?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        ids.collect()
    }

    /// Ends a job: `succeeded`, `failed` or `skipped` (with a reason).
    pub fn finish(
        &self,
        id: i64,
        status: &str,
        reason: Option<&str>,
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
               AND source = 'api' AND created_at >= ?3",
        )?;
        let rows = stmt.query_map(params![action, database, since], |r| r.get(0))?;
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
               AND resolved_at IS NULL AND status = 'succeeded' RETURNING action",
        )?;
        let rows = stmt.query_map(params![fingerprint, starts_at, now], |r| r.get(0))?;
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

    /// Deletes finished jobs created before `before` and audit events older
    /// than it, in batches so the webhook's writes are never held up for
    /// long. Returns how many jobs and events were deleted.
    pub fn prune_history(&self, before: f64) -> rusqlite::Result<(usize, usize)> {
        const BATCH: i64 = 5000;
        let mut deleted = (0, 0);
        loop {
            let n = self.conn().execute(
                "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE created_at < ?1
                   AND status NOT IN ('queued', 'running') LIMIT ?2)",
                params![before, BATCH],
            )?;
            deleted.0 += n;
            if n < BATCH as usize {
                break;
            }
        }
        loop {
            let n = self.conn().execute(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 LIMIT ?2)",
                params![before, BATCH],
            )?;
            deleted.1 += n;
            if n < BATCH as usize {
                break;
            }
        }
        Ok(deleted)
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
        actions: &[&str],
        since: f64,
    ) -> rusqlite::Result<Vec<JobRecord>> {
        let conn = self.conn();
        // SQLite takes the bare columns of a MAX() aggregate from the row holding the maximum.
        let mut stmt = conn.prepare_cached(
            "SELECT *, MAX(finished_at) FROM jobs
             WHERE action IN (SELECT value FROM json_each(?1)) AND status IN ('succeeded', 'failed')
               AND finished_at > ?2
             GROUP BY action, database ORDER BY finished_at",
        )?;
        let actions = serde_json::to_string(actions).unwrap_or_else(|_| "[]".into());
        let rows = stmt.query_map(params![actions, since], job_from_row)?;
        rows.collect()
    }

    pub fn audit_events(&self, limit: usize) -> rusqlite::Result<Vec<AuditEvent>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT * FROM audit ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map([limit.min(10_000) as i64], |r| {
            Ok(AuditEvent {
                at: r.get("at")?,
                event: r.get("event")?,
                alertname: r.get("alertname")?,
                fingerprint: r.get("fingerprint")?,
                rule: r.get("rule")?,
                action: r.get("action")?,
                database: r.get("database")?,
                job_id: r.get("job_id")?,
                reason: r.get("reason")?,
                detail: r.get("detail")?,
                credential: r.get("credential")?,
            })
        })?;
        rows.collect()
    }
}

/// Opens the connection, sets it up and marks interrupted jobs; see
/// [`files::retry_while_busy`] for why it may be called again.
fn open_connection(path: &Path, now: f64) -> rusqlite::Result<(Connection, usize)> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(files::BUSY_TIMEOUT)?;
    // WAL with FULL sync: a job acknowledged with 202 is on disk.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    // Columns added after the first release: state databases created
    // before them gain them here.
    add_column(&conn, "jobs", "credential", "TEXT")?;
    add_column(&conn, "audit", "credential", "TEXT")?;
    add_column(&conn, "jobs", "ignore_window", "INTEGER NOT NULL DEFAULT 0")?;
    // A job left `running` by a process that no longer exists was interrupted;
    // one whose process still runs (a `caretaker run` beside the daemon) is not.
    let running: Vec<(i64, Option<u32>)> = conn
        .prepare("SELECT id, pid FROM jobs WHERE status = 'running'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut interrupted = 0;
    for (id, pid) in running {
        let alive = pid
            .is_some_and(|p| p != std::process::id() && Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            interrupted += conn.execute(
                "UPDATE jobs SET status = 'interrupted', finished_at = ?2,
                   error = 'caretaker stopped while the job was running' WHERE id = ?1 AND status = 'running'",
                params![id, now],
            )?;
        }
    }
    Ok((conn, interrupted))
}

/// See [`StateStore::attempts`]; also read inside [`StateStore::claim`]'s transaction.
fn attempts_in(
    conn: &Connection,
    action: &str,
    database: &str,
    limit: usize,
) -> rusqlite::Result<Vec<Attempt>> {
    let mut stmt = conn.prepare_cached(
        "SELECT started_at, status = 'succeeded', source IN ('api', 'cli') FROM jobs
         WHERE action = ?1 AND database = ?2 AND started_at IS NOT NULL
           AND status IN ('running', 'succeeded', 'failed', 'interrupted') AND dry_run = 0
         ORDER BY started_at DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![action, database, limit as i64], |r| {
        Ok(Attempt {
            at: r.get(0)?,
            ok: r.get(1)?,
            by_hand: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// Inserts jobs, keeping the existing job of a key that is already there.
pub(super) fn insert_jobs(
    tx: &Connection,
    jobs: &[NewJob],
    now: f64,
) -> rusqlite::Result<Vec<Recorded>> {
    let mut out = Vec::with_capacity(jobs.len());
    for j in jobs {
        let inserted = tx.prepare_cached(
            "INSERT OR IGNORE INTO jobs (key, source, rule, action, database, alertname, fingerprint, starts_at,
               dry_run, cooldown_seconds, labels, status, created_at, credential, ignore_window)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'queued', ?12, ?13, ?14)",
        )?
        .execute(params![
            j.key, j.source, j.rule, j.action, j.database, j.alertname, j.fingerprint, j.starts_at,
            j.dry_run, j.cooldown.as_secs_f64(), j.labels, now, j.credential, j.ignore_window
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

pub(super) fn insert_audit(conn: &Connection, e: &AuditEvent) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at, event, alertname, fingerprint, rule, action, database, job_id, reason, detail, credential)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        e.at, e.event, e.alertname, e.fingerprint, e.rule, e.action, e.database, e.job_id, e.reason, e.detail,
        e.credential
    ])?;
    Ok(())
}

#[path = "state_claim.rs"]
mod claim;
#[path = "state_files.rs"]
mod files;

pub use claim::{Attempts, Claim};

/// Adds `column` with `definition` unless the table has it.
fn add_column(
    conn: &Connection,
    table: &str,
    column: &str,
    definition: &str,
) -> rusqlite::Result<()> {
    let present: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        params![table, column],
        |r| r.get(0),
    )?;
    if present {
        return Ok(());
    }
    // Another process opening the same state database may add it between
    // the check and the ALTER: its column is as good as ours.
    match conn.execute_batch(&format!(
        "ALTER TABLE {table} ADD COLUMN {column} {definition}"
    )) {
        Err(rusqlite::Error::SqliteFailure(_, Some(m)))
            if m.starts_with("duplicate column name") =>
        {
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
