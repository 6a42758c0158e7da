//! `[[query]]`: probes, SQL statements caretaker times on every database's
//! read-only connection, optionally turning their rows into gauges.
//!
//! A probe is checked here, before any database is opened: it must prepare
//! against the seed schema (`src/schema.sql`, in memory) and be a read-only
//! query. A statement naming tables the seed schema lacks cannot be checked
//! without the real database; `check-config` prepares it there too, and the
//! collector refuses it at run time with the same check.

use std::time::Duration;

use rusqlite::Connection;
use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;
use super::responder::Problem;
use crate::store::sqlite::{prepare_read_only, StatementRefused};

/// One validated `[[query]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryConfig {
    /// The `query` label value.
    pub name: String,
    pub sql: String,
    pub interval: Duration,
    /// The statement is interrupted after this long.
    pub timeout: Duration,
    /// The column whose number becomes `caretaker_query_value`.
    pub value: Option<String>,
    /// Columns whose text labels each value (up to `collect.label_limit` rows).
    pub labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileQuery {
    name: Spanned<String>,
    sql: Spanned<String>,
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    value: Option<Spanned<String>>,
    labels: Option<Spanned<Vec<String>>>,
}

/// Label names caretaker sets itself on a probe's series.
const RESERVED_LABELS: [&str; 5] = ["database", "query", "le", "instance", "job"];

/// A Prometheus label name that does not start with `__`.
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// An in-memory database with the seed schema, to prepare probes against.
fn seed_schema() -> Option<Connection> {
    let conn = Connection::open_in_memory().ok()?;
    conn.execute_batch(crate::demo::generate::SCHEMA).ok()?;
    Some(conn)
}

/// Whether a prepare error only says the seed schema lacks a name the real
/// database may have.
fn unknown_name(e: &rusqlite::Error) -> bool {
    let text = e.to_string();
    text.contains("no such table") || text.contains("no such column")
}

/// Whether the prepared statement has the probe's value and label columns.
fn check_columns(
    stmt: &rusqlite::Statement<'_>,
    value: Option<&str>,
    labels: &[String],
) -> Result<(), String> {
    let columns: Vec<&str> = stmt.column_names().collect();
    for wanted in value.into_iter().chain(labels.iter().map(String::as_str)) {
        if !columns.contains(&wanted) {
            return Err(format!(
                "the statement has no column {wanted:?} (its columns: {})",
                columns.join(", ")
            ));
        }
    }
    Ok(())
}

impl QueryConfig {
    /// Checks the probe against a real database's connection: it prepares
    /// there, is read-only and has its value and label columns.
    pub fn check(&self, conn: &Connection) -> Result<(), String> {
        let stmt = prepare_read_only(conn, &self.sql).map_err(|e| e.to_string())?;
        check_columns(&stmt, self.value.as_deref(), &self.labels)
    }
}

pub(super) fn resolve_queries(raw: &[FileQuery], problems: &mut Vec<Problem>) -> Vec<QueryConfig> {
    // Only a file with probes pays for the in-memory schema.
    let schema = if raw.is_empty() { None } else { seed_schema() };
    let mut out: Vec<QueryConfig> = Vec::new();
    for q in raw {
        let name = q.name.get_ref();
        let at = Some(q.name.span().start);
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            let msg = format!(
                "query name {name:?} must be non-empty and use only letters, digits, '_', '-' and '.'"
            );
            problems.push((at, msg));
        } else if out.iter().any(|o| &o.name == name) {
            problems.push((at, format!("query name {name:?} is used twice")));
        }
        let interval = q.interval.map_or(Duration::from_secs(30), |h| h.0);
        let timeout = q.timeout.map_or(Duration::from_secs(1), |h| h.0);
        if timeout > interval {
            let msg = format!(
                "query {name:?}: timeout ({}) must not exceed interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            );
            problems.push((at, msg));
        }
        let labels = q
            .labels
            .as_ref()
            .map(|l| l.get_ref().clone())
            .unwrap_or_default();
        let labels_at = q.labels.as_ref().map(|l| l.span().start);
        for (i, label) in labels.iter().enumerate() {
            if !valid_label_name(label) || RESERVED_LABELS.contains(&label.as_str()) {
                let msg = format!(
                    "query {name:?}: label {label:?} must be a Prometheus label name other than {}",
                    RESERVED_LABELS.join(", ")
                );
                problems.push((labels_at, msg));
            } else if labels[..i].contains(label) {
                problems.push((
                    labels_at,
                    format!("query {name:?}: label {label:?} is named twice"),
                ));
            }
        }
        let value = q.value.as_ref().map(|v| v.get_ref().clone());
        if value.is_none() && !labels.is_empty() {
            problems.push((
                labels_at,
                format!("query {name:?}: labels need a value column"),
            ));
        }
        if let Some(v) = &value {
            if labels.contains(v) {
                let at = q.value.as_ref().map(|v| v.span().start);
                problems.push((
                    at,
                    format!("query {name:?}: column {v:?} cannot be both the value and a label"),
                ));
            }
        }
        let sql = q.sql.get_ref();
        let sql_at = Some(q.sql.span().start);
        match schema.as_ref().map(|conn| prepare_read_only(conn, sql)) {
            Some(Err(StatementRefused::Sql(e))) if unknown_name(&e) => {}
            Some(Err(e)) => problems.push((sql_at, format!("query {name:?}: {e}"))),
            Some(Ok(stmt)) => {
                if let Err(e) = check_columns(&stmt, value.as_deref(), &labels) {
                    problems.push((sql_at, format!("query {name:?}: {e}")));
                }
            }
            None => {}
        }
        out.push(QueryConfig {
            name: name.clone(),
            sql: sql.clone(),
            interval,
            timeout,
            value,
            labels,
        });
    }
    out
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
