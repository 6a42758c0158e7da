//! Query probes (`[[query]]`): the operator's own statements, timed on the
//! read-only monitoring connection, as the seed's "Query Performance
//! Monitoring" and "Index Optimization" checks do by hand.
//!
//! One collector per database runs every probe that is due on each of its
//! ticks (the runner calls it on the greatest common divisor of the probes'
//! intervals), each statement interrupted through SQLite's interrupt handle
//! once its own timeout has passed. What it measured stays in the collector
//! between runs (the duration histogram accumulates; values are the last
//! run's), so a scrape only encodes the snapshot. A reload builds a new
//! collector: a removed probe's series go with the old one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::labels::label_value;
use super::{CollectError, Collector};
use crate::config::QueryConfig;
use crate::metrics::{Histogram, Labels, MetricSet};
use crate::store::sqlite::{
    is_interrupt, open_monitor, prepare_read_only, scans_without_index, InterruptAfter,
    StatementRefused,
};

/// The collector's name, and the `collector` label of its health series.
pub const NAME: &str = "query";

/// Upper bounds of `caretaker_query_duration_seconds`; 0.1 s is the seed's
/// slow-query threshold (`CaretakerQuerySlow`).
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why a probe's run gave no result: the `reason` label, a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFailure {
    /// Interrupted at its timeout (or at the collection's deadline).
    Timeout,
    /// Refused or failed: a missing table, a statement that would write, a busy database.
    Error,
}

impl ProbeFailure {
    const ALL: [ProbeFailure; 2] = [ProbeFailure::Timeout, ProbeFailure::Error];

    pub fn label(self) -> &'static str {
        match self {
            ProbeFailure::Timeout => "timeout",
            ProbeFailure::Error => "error",
        }
    }
}

/// What one probe has measured since the collector started.
#[derive(Debug)]
struct ProbeState {
    next_due: Option<Instant>,
    durations: Histogram,
    failures: [u64; 2],
    values: Vec<(Labels, f64)>,
    full_scan: Option<bool>,
    last_ok: bool,
}

pub struct QueryCollector {
    path: PathBuf,
    probes: Vec<QueryConfig>,
    label_limit: usize,
    tick: Duration,
    state: Mutex<Vec<ProbeState>>,
}

impl QueryCollector {
    pub fn new(path: &Path, probes: Vec<QueryConfig>, label_limit: usize) -> Self {
        let state = probes
            .iter()
            .map(|_| ProbeState {
                next_due: None,
                durations: Histogram::new(&BUCKETS),
                failures: [0; 2],
                values: Vec::new(),
                full_scan: None,
                last_ok: true,
            })
            .collect();
        Self {
            path: path.to_path_buf(),
            tick: tick(&probes),
            probes,
            label_limit,
            state: Mutex::new(state),
        }
    }

    /// How often the runner should call the collector.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// The longest one collection may take: every probe at its timeout, and
    /// the time to open the file and explain the statements.
    pub fn timeout(&self) -> Duration {
        self.probes.iter().map(|p| p.timeout).sum::<Duration>() + Duration::from_secs(10)
    }
}

/// The greatest common divisor of the intervals (at least one second, or the
/// shortest interval when that is shorter), so every probe runs on time.
fn tick(probes: &[QueryConfig]) -> Duration {
    fn gcd(a: u128, b: u128) -> u128 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let millis = probes.iter().map(|p| p.interval.as_millis().max(1));
    let Some(shortest) = millis.clone().min() else {
        return Duration::from_secs(30);
    };
    let g = millis.fold(0, gcd).max(shortest.min(1000));
    Duration::from_millis(u64::try_from(g).unwrap_or(30_000))
}

/// A `'static` label name for a configured column. Label names come from the
/// configuration only (bounded, validated), and each distinct one is leaked
/// once however often the configuration is reloaded.
fn label_name(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    match names.get(name) {
        Some(interned) => interned,
        None => {
            let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
            names.insert(leaked);
            leaked
        }
    }
}

/// A column's number: integers, reals and numeric text; anything else none.
fn number(v: ValueRef<'_>) -> Option<f64> {
    match v {
        ValueRef::Integer(i) => Some(i as f64),
        ValueRef::Real(r) => Some(r),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        ValueRef::Null | ValueRef::Blob(_) => None,
    }
}

fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(r) => Some(r.to_string()),
    }
}

/// Runs `probe` once, reading every row (the time of the whole result is
/// what an application waits for), and returns its values: at most `limit`
/// distinct label sets, the first row of each.
fn run(
    conn: &Connection,
    probe: &QueryConfig,
    limit: usize,
) -> Result<Vec<(Labels, f64)>, StatementRefused> {
    let mut stmt = prepare_read_only(conn, &probe.sql)?;
    let index = |name: &str| stmt.column_index(name);
    let value = probe.value.as_deref().map(index).transpose()?;
    let labels = probe
        .labels
        .iter()
        .map(|l| Ok((label_name(l), index(l)?)))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut rows = stmt.query([])?;
    let mut values: Vec<(Labels, f64)> = Vec::new();
    while let Some(row) = rows.next()? {
        let Some(v) = value.map(|i| row.get_ref(i)).transpose()?.and_then(number) else {
            continue;
        };
        if values.len() >= limit {
            continue;
        }
        let mut set: Labels = vec![("query", probe.name.clone())];
        for (name, i) in &labels {
            set.push((name, label_value(text(row.get_ref(*i)?))));
        }
        if !values.iter().any(|(have, _)| *have == set) {
            values.push((set, v));
        }
    }
    Ok(values)
}

impl QueryCollector {
    fn run_probe(&self, conn: &Connection, probe: &QueryConfig, state: &mut ProbeState) {
        let started = Instant::now();
        let result = InterruptAfter::start(conn, probe.timeout)
            .map_err(CollectError::Io)
            .and_then(|guard| {
                let r = run(conn, probe, self.label_limit);
                drop(guard);
                r.map_err(|e| match e {
                    StatementRefused::Sql(e) => CollectError::Sqlite(e),
                    other => CollectError::Other(other.to_string()),
                })
            });
        state.durations.observe(started.elapsed().as_secs_f64());
        match result {
            Ok(values) => {
                state.values = values;
                state.last_ok = true;
            }
            Err(e) => {
                let failure = match &e {
                    CollectError::Sqlite(s) if is_interrupt(s) => ProbeFailure::Timeout,
                    _ => ProbeFailure::Error,
                };
                state.failures[failure as usize] += 1;
                state.values.clear();
                let timeout = humantime::format_duration(probe.timeout).to_string();
                if state.last_ok {
                    tracing::warn!(query = %probe.name, path = %self.path.display(), reason = failure.label(), %timeout, error = %e, "query probe failed");
                } else {
                    tracing::debug!(query = %probe.name, reason = failure.label(), error = %e, "query probe failed again");
                }
                state.last_ok = false;
            }
        }
    }

    fn figures(&self, states: &[ProbeState]) -> MetricSet {
        let mut set = MetricSet::new();
        for (probe, state) in self.probes.iter().zip(states) {
            let name = || vec![("query", probe.name.clone())];
            set.histogram(
                "caretaker_query_duration_seconds",
                "How long each run of a query probe took, to its last row or its timeout",
                name(),
                state.durations.clone(),
            );
            for failure in ProbeFailure::ALL {
                let mut labels = name();
                labels.push(("reason", failure.label().to_string()));
                set.counter(
                    "caretaker_query_failures",
                    "Runs of a query probe that timed out or failed",
                    labels,
                    state.failures[failure as usize] as f64,
                );
            }
            if let Some(full) = state.full_scan {
                set.gauge(
                    "caretaker_query_full_scan",
                    "1 if the probe's query plan reads a whole table without an index",
                    name(),
                    if full { 1.0 } else { 0.0 },
                );
            }
            for (labels, v) in &state.values {
                set.gauge(
                    "caretaker_query_value",
                    "The value column of each row a query probe returned",
                    labels.clone(),
                    *v,
                );
            }
        }
        set
    }
}

impl Collector for QueryCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(&self, deadline: Instant) -> Result<MetricSet, CollectError> {
        let conn = open_monitor(&self.path, deadline)?;
        let mut states = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (probe, state) in self.probes.iter().zip(states.iter_mut()) {
            if state.full_scan.is_none() {
                // Once per start or reload; a plan that cannot be made yet
                // (a table still missing) is tried again on the next run.
                state.full_scan = scans_without_index(&conn, &probe.sql).ok();
            }
            // Half a tick of slack, so a run that ends a little late does
            // not push the next one a whole tick back.
            let now = Instant::now();
            if state.next_due.is_some_and(|due| due > now + self.tick / 2) {
                continue;
            }
            state.next_due = Some(now + probe.interval);
            self.run_probe(&conn, probe, state);
        }
        Ok(self.figures(&states))
    }
}

#[cfg(test)]
mod tests;
