//! What the agents have been doing: row counts, verifications, trajectories,
//! the application's own metrics log, migrations, and the leftovers the
//! runbooks clean up (expired memory entries, orphaned embeddings).
//!
//! Each figure is read only from the seed tables that exist, so a database
//! with part of the schema still reports what it has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use rusqlite::Connection;

use super::expiry::Expiries;
use super::groups::{number, Groups};
use super::labels::{breakdown, breakdown_limit, fold, label_value, top_keys};
use super::last_pass::{now_seconds, LastPass};
use super::patterns::fold_groups;
use super::{CollectError, Collector};
use crate::config::Detail;
use crate::metrics::MetricSet;
use crate::store::sqlite::{existing_tables, open_monitor, SEED_TABLES};

pub struct ActivityCollector {
    path: PathBuf,
    label_limit: usize,
    /// At `summary` the per-agent and per-task-type series are summed into
    /// one, and the application's own metrics are left out.
    detail: Detail,
    /// Reused while the file is unchanged (the expired entries are counted
    /// from [`ActivityCollector::expiries`] at each pass).
    last: LastPass,
    /// What the last pass read of the entries' expiry times.
    expiries: Mutex<Option<Expiries>>,
}

impl ActivityCollector {
    pub fn new(path: &Path, label_limit: usize) -> Self {
        Self {
            path: path.to_path_buf(),
            label_limit,
            detail: Detail::Full,
            last: LastPass::default(),
            expiries: Mutex::new(None),
        }
    }

    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }
}

#[derive(Debug, Default, Clone)]
struct Verification {
    count: f64,
    score_sum: f64,
    by_status: BTreeMap<String, f64>,
}

impl Verification {
    fn add(&mut self, o: &Verification) {
        self.count += o.count;
        self.score_sum += o.score_sum;
        for (k, v) in &o.by_status {
            *self.by_status.entry(k.clone()).or_default() += v;
        }
    }
}

fn count(conn: &Connection, sql: &str) -> rusqlite::Result<f64> {
    conn.query_row(sql, [], |r| r.get::<_, f64>(0))
}

/// One agent's verifications while the table is read.
#[derive(Default)]
struct AgentRows {
    count: f64,
    score_sum: f64,
    statuses: Groups<f64>,
}

fn verifications(
    conn: &Connection,
    set: &mut MetricSet,
    limit: usize,
    detail: Detail,
) -> rusqlite::Result<()> {
    // Storage order, grouped in memory: GROUP BY would walk the agent index
    // (a lookup per row) and sort into a temporary B-tree.
    let mut stmt = conn
        .prepare("SELECT agent_name, verification_status, truth_score FROM verification_history")?;
    let mut rows = stmt.query([])?;
    let mut by_agent: Groups<AgentRows> = Groups::default();
    while let Some(r) = rows.next()? {
        let a = by_agent.get(r.get_ref(0)?);
        a.count += 1.0;
        a.score_sum += number(r.get_ref(2)?);
        *a.statuses.get(r.get_ref(1)?) += 1.0;
    }
    let groups = by_agent
        .into_labelled()
        .into_iter()
        .map(|(agent, a)| {
            let mut v = Verification {
                count: a.count,
                score_sum: a.score_sum,
                by_status: BTreeMap::new(),
            };
            for (status, n) in a.statuses.into_labelled() {
                *v.by_status.entry(status).or_default() += n;
            }
            (agent, v)
        })
        .collect();
    let agent_limit = breakdown_limit(detail, limit);
    let agents = fold_groups(groups, |v| v.count, Verification::add, agent_limit);
    for (agent, v) in agents {
        if v.count > 0.0 {
            set.gauge(
                "caretaker_verification_truth_score_average",
                "Average truth_score of an agent's verifications",
                breakdown(detail, "agent", agent.clone()),
                v.score_sum / v.count,
            );
        }
        let statuses = top_keys(
            v.by_status.iter().map(|(k, n)| (k.clone(), *n)).collect(),
            limit,
        );
        let mut folded: BTreeMap<&str, f64> = BTreeMap::new();
        for (status, n) in &v.by_status {
            *folded.entry(fold(status, &statuses)).or_default() += n;
        }
        for (status, n) in folded {
            set.gauge(
                "caretaker_verifications",
                "Verifications per agent and status",
                [
                    breakdown(detail, "agent", agent.clone()),
                    vec![("status", status.to_string())],
                ]
                .concat(),
                n,
            );
        }
    }
    Ok(())
}

fn trajectories(
    conn: &Connection,
    set: &mut MetricSet,
    limit: usize,
    detail: Detail,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT task_type, outcome FROM task_trajectories")?;
    let mut cursor = stmt.query([])?;
    let mut by_type: Groups<Groups<f64>> = Groups::default();
    while let Some(r) = cursor.next()? {
        *by_type.get(r.get_ref(0)?).get(r.get_ref(1)?) += 1.0;
    }
    let rows: Vec<(String, String, f64)> = by_type
        .into_labelled()
        .into_iter()
        .flat_map(|(t, outcomes)| {
            outcomes
                .into_labelled()
                .into_iter()
                .map(move |(o, n)| (t.clone(), o, n))
        })
        .collect();
    let weights = |pick: fn(&(String, String, f64)) -> &String, limit: usize| {
        let mut w: BTreeMap<String, f64> = BTreeMap::new();
        for row in &rows {
            *w.entry(pick(row).clone()).or_default() += row.2;
        }
        top_keys(w.into_iter().collect(), limit)
    };
    let types = weights(|r| &r.0, breakdown_limit(detail, limit));
    let outcomes = weights(|r| &r.1, limit);
    let mut folded: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for (t, o, n) in &rows {
        *folded
            .entry((fold(t, &types), fold(o, &outcomes)))
            .or_default() += n;
    }
    for ((t, o), n) in folded {
        set.gauge(
            "caretaker_trajectories",
            "Task trajectories per task type and outcome",
            [
                breakdown(detail, "task_type", t.to_string()),
                vec![("outcome", o.to_string())],
            ]
            .concat(),
            n,
        );
    }
    Ok(())
}

fn app_metrics(conn: &Connection, set: &mut MetricSet, limit: usize) -> rusqlite::Result<()> {
    // SQLite returns the bare columns of the row holding MAX(id): the latest value.
    let mut stmt = conn.prepare(
        "SELECT metric_name, metric_value, MAX(id), COUNT(*) FROM metrics_log GROUP BY metric_name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            label_value(r.get::<_, Option<String>>(0)?),
            r.get::<_, Option<f64>>(1)?,
            r.get::<_, f64>(3)?,
        ))
    })?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let kept = top_keys(rows.iter().map(|r| (r.0.clone(), r.2)).collect(), limit);
    for (name, value, _) in rows {
        if let (true, Some(v)) = (kept.contains(&name), value) {
            set.gauge(
                "caretaker_app_metric",
                "Latest value of each metric in the application's metrics_log",
                vec![("metric_name", name)],
                v,
            );
        }
    }
    Ok(())
}

impl Collector for ActivityCollector {
    fn name(&self) -> &'static str {
        "activity"
    }

    /// The last pass while the file stands still, with the expired entries
    /// counted at this second (see [`super::expiry`]), else a new pass.
    fn collect(&self, deadline: Instant) -> Result<MetricSet, CollectError> {
        let mut set = self.last.or_read(&self.path, || self.read(deadline))?;
        let expiries = self.expiries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(expiries) = expiries.as_ref() {
            set.gauge(
                "caretaker_memory_entries_expired",
                "Memory entries past expires_at that have not been purged",
                vec![],
                expiries.expired_at(now_seconds()),
            );
        }
        Ok(set)
    }
}

impl ActivityCollector {
    /// One full pass but the expired entries, and the second from which the
    /// expiry times it kept no longer tell their count.
    fn read(&self, deadline: Instant) -> Result<(MetricSet, Option<i64>), CollectError> {
        let mut conn = open_monitor(&self.path, deadline)?;
        let mut until = None;
        let tables = existing_tables(&conn)?;
        let has = |t: &str| tables.iter().any(|x| x == t);
        let tx = conn.transaction()?;
        let mut set = MetricSet::new();
        for table in SEED_TABLES.iter().filter(|t| has(t)) {
            set.gauge(
                "caretaker_table_rows",
                "Rows in each table of the memory schema",
                vec![("table", table.to_string())],
                count(&tx, &format!("SELECT COUNT(*) FROM \"{table}\""))?,
            );
        }
        if has("pattern_embeddings") && has("patterns") {
            let sql = "SELECT COUNT(*) FROM pattern_embeddings pe
                       WHERE NOT EXISTS (SELECT 1 FROM patterns p WHERE p.id = pe.pattern_id)";
            set.gauge(
                "caretaker_orphaned_embeddings",
                "Embeddings whose pattern is gone",
                vec![],
                count(&tx, sql)?,
            );
        }
        // The count moves with the clock: [`collect`] adds it at each pass.
        let expiries = if has("memory_entries") {
            let (expiries, kept_until) = Expiries::read(&tx, now_seconds())?;
            until = kept_until;
            Some(expiries)
        } else {
            None
        };
        *self.expiries.lock().unwrap_or_else(|e| e.into_inner()) = expiries;
        if has("verification_history") {
            verifications(&tx, &mut set, self.label_limit, self.detail)?;
        }
        if has("task_trajectories") {
            trajectories(&tx, &mut set, self.label_limit, self.detail)?;
        }
        // Latest values of differently named metrics cannot be summed.
        if has("metrics_log") && self.detail == Detail::Full {
            app_metrics(&tx, &mut set, self.label_limit)?;
        }
        if has("migrations_applied") {
            let (n, last): (f64, Option<f64>) = tx.query_row(
                "SELECT COUNT(*), CAST(strftime('%s', MAX(applied_at)) AS REAL)
                 FROM migrations_applied WHERE status = 'success'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            set.gauge(
                "caretaker_migrations_applied",
                "Migrations applied successfully",
                vec![],
                n,
            );
            if let Some(t) = last {
                set.gauge(
                    "caretaker_migration_last_applied_timestamp_seconds",
                    "When the last successful migration was applied",
                    vec![],
                    t,
                );
            }
        }
        tx.finish()?;
        Ok((set, until))
    }
}
