//! The audit trail: every decision, with the credential behind it; and the
//! pruning of old jobs and events.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::StateStore;
use crate::responder::job::{AuditKind, JobStatus};

/// One audited decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditEvent {
    pub at: f64,
    pub event: AuditKind,
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

impl StateStore {
    pub fn audit(&self, event: &AuditEvent) -> rusqlite::Result<()> {
        insert_audit(&self.conn(), event)
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

    /// Deletes finished jobs created before `before` and audit events older
    /// than it, in batches so the webhook's writes are never held up for
    /// long. Returns how many jobs and events were deleted.
    pub fn prune_history(&self, before: f64) -> rusqlite::Result<(usize, usize)> {
        const BATCH: i64 = 5000;
        let mut deleted = (0, 0);
        loop {
            let n = self.conn().execute(
                "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE created_at < ?1
                   AND status NOT IN (?3, ?4) LIMIT ?2)",
                params![before, BATCH, JobStatus::Queued, JobStatus::Running],
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
}

pub(in crate::responder) fn insert_audit(
    conn: &Connection,
    e: &AuditEvent,
) -> rusqlite::Result<()> {
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
