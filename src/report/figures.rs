//! The report's figures over time: one row per day of the period from the
//! seed tables (each read only when it exists), and caretaker's jobs from
//! its state database.
//!
//! Times in the seed tables are text; `datetime(...)` reads every form SQLite
//! knows (`YYYY-MM-DD HH:MM:SS`, ISO 8601 with `T` and `Z`) the same way, and
//! a row whose time cannot be read belongs to no day.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use rusqlite::{params, Connection};

use super::{ActionCount, AgentScore, Day};
use crate::config::Config;
use crate::responder::job::JobStatus;
use crate::responder::manual;
use crate::responder::state::JobRecord;
use crate::store::sqlite::{existing_tables, open_monitor};

/// Per day: (value, count) of one query `SELECT day, value, count`.
fn by_day(
    conn: &Connection,
    sql: &str,
    from: &str,
    to: &str,
) -> rusqlite::Result<BTreeMap<String, (Option<f64>, f64)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params![from, to], |r| {
        Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?)))
    })?;
    rows.collect()
}

/// The days of `[from, to)` with their figures, and each agent's truth score
/// over the period (the `limit` agents with most verifications).
pub fn over_time(
    path: &Path,
    from: f64,
    to: f64,
    limit: usize,
    deadline: Instant,
) -> rusqlite::Result<(Vec<Day>, Vec<AgentScore>)> {
    let conn = open_monitor(path, deadline)?;
    let tables = existing_tables(&conn)?;
    let has = |t: &str| tables.iter().any(|x| x == t);
    let text = |t: f64| -> rusqlite::Result<String> {
        conn.query_row("SELECT datetime(?1, 'unixepoch')", [t], |r| r.get(0))
    };
    let (from_text, to_text) = (text(from)?, text(to)?);
    let empty = BTreeMap::new;
    let ops = if has("metrics_log") {
        // Seed 000's weekly "Performance Analysis", one average per day.
        by_day(
            &conn,
            "SELECT date(timestamp), AVG(metric_value), COUNT(*) FROM metrics_log
             WHERE metric_name = 'neural_operations_per_second'
               AND datetime(timestamp) >= ?1 AND datetime(timestamp) < ?2 GROUP BY 1",
            &from_text,
            &to_text,
        )?
    } else {
        empty()
    };
    let added = if has("patterns") {
        by_day(
            &conn,
            "SELECT date(created_at), AVG(confidence), COUNT(*) FROM patterns
             WHERE datetime(created_at) >= ?1 AND datetime(created_at) < ?2 GROUP BY 1",
            &from_text,
            &to_text,
        )?
    } else {
        empty()
    };
    let truth = if has("verification_history") {
        by_day(
            &conn,
            "SELECT date(timestamp), AVG(truth_score), COUNT(*) FROM verification_history
             WHERE datetime(timestamp) >= ?1 AND datetime(timestamp) < ?2 GROUP BY 1",
            &from_text,
            &to_text,
        )?
    } else {
        empty()
    };
    let mut days = Vec::new();
    let mut day = from - from.rem_euclid(86_400.0);
    while day < to {
        let date: String = conn.query_row("SELECT date(?1, 'unixepoch')", [day], |r| r.get(0))?;
        let (ops_per_second, _) = ops.get(&date).copied().unwrap_or((None, 0.0));
        let (added_confidence, patterns_added) = added.get(&date).copied().unwrap_or((None, 0.0));
        let (truth_score, verifications) = truth.get(&date).copied().unwrap_or((None, 0.0));
        days.push(Day {
            date,
            ops_per_second,
            patterns_added,
            added_confidence,
            truth_score,
            verifications,
        });
        day += 86_400.0;
    }
    let mut agents = Vec::new();
    if has("verification_history") {
        let mut stmt = conn.prepare(
            "SELECT COALESCE(NULLIF(agent_name, ''), 'none'), AVG(truth_score), COUNT(*)
             FROM verification_history
             WHERE datetime(timestamp) >= ?1 AND datetime(timestamp) < ?2
             GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![from_text, to_text, limit as i64], |r| {
            Ok(AgentScore {
                agent: r.get(0)?,
                truth_score: r.get::<_, Option<f64>>(1)?.unwrap_or(0.0),
                verifications: r.get(2)?,
            })
        })?;
        agents = rows.collect::<rusqlite::Result<_>>()?;
    }
    Ok((days, agents))
}

/// caretaker's jobs on `database` created in `[from, to)`; an explanation
/// instead when there is no history to read (caretaker never ran here: the
/// state database is not created for a report).
pub fn jobs(config: &Config, database: &str, from: f64, to: f64) -> Result<Vec<JobRecord>, String> {
    let state = &config.responder.state_path;
    if !state.exists() {
        return Err(format!(
            "no history: {} does not exist yet",
            state.display()
        ));
    }
    let jobs = manual::history(config, 10_000, None, Some(database.to_string()))
        .map_err(|e| format!("no history: {e}"))?;
    Ok(jobs
        .into_iter()
        .filter(|j| j.created_at >= from && j.created_at < to)
        .collect())
}

/// `jobs` per action, by outcome.
pub fn actions(jobs: &[JobRecord]) -> Vec<ActionCount> {
    let mut counts: BTreeMap<String, ActionCount> = BTreeMap::new();
    for job in jobs {
        let entry = counts
            .entry(job.action.clone())
            .or_insert_with(|| ActionCount {
                action: job.action.clone(),
                ..ActionCount::default()
            });
        match job.status {
            JobStatus::Succeeded => entry.succeeded += 1,
            JobStatus::Failed => entry.failed += 1,
            _ => entry.other += 1,
        }
    }
    counts.into_values().collect()
}
