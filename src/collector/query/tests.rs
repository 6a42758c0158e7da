use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::*;
use crate::demo::generate::{generate, GenerateOptions, SCHEMA};

fn probe(name: &str, sql: &str, timeout: Duration) -> QueryConfig {
    QueryConfig {
        name: name.into(),
        sql: sql.into(),
        interval: Duration::from_secs(30),
        timeout,
        value: None,
        labels: Vec::new(),
    }
}

fn demo(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("memory.db");
    let opts = GenerateOptions {
        patterns: 3000,
        ..GenerateOptions::default()
    };
    generate(&path, &opts).expect("generate");
    path
}

fn histogram<'a>(set: &'a MetricSet, query: &str) -> &'a Histogram {
    let family = set
        .histograms()
        .iter()
        .find(|f| f.name == "caretaker_query_duration_seconds")
        .expect("duration family");
    &family
        .samples
        .iter()
        .find(|(l, _)| l.iter().any(|(k, v)| *k == "query" && v == query))
        .expect("the probe's histogram")
        .1
}

fn collect(c: &QueryCollector) -> MetricSet {
    c.collect(Instant::now() + c.timeout()).expect("collect")
}

/// Counts to 10^12 one row at a time, returning nothing until the end:
/// runs for hours unless interrupted.
const SLOW: &str = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000000) SELECT max(n) AS n FROM c";

#[test]
fn a_slow_query_is_interrupted_at_its_timeout_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = demo(&dir);
    let timeout = Duration::from_millis(300);
    let mut slow = probe("slow", SLOW, timeout);
    slow.value = Some("n".into());
    let c = QueryCollector::new(&path, vec![slow], 20);
    let started = Instant::now();
    let set = collect(&c);
    let took = started.elapsed();
    assert!(took >= timeout, "ran until the timeout: {took:?}");
    assert!(took < timeout * 10, "stopped soon after it: {took:?}");
    let h = histogram(&set, "slow");
    assert_eq!(h.count(), 1);
    assert!(
        h.sum() >= timeout.as_secs_f64(),
        "the timed-out run is observed"
    );
    let failures = |reason| {
        set.value(
            "caretaker_query_failures",
            &[("query", "slow"), ("reason", reason)],
        )
    };
    assert_eq!(failures("timeout"), Some(1.0));
    assert_eq!(failures("error"), Some(0.0));
    assert_eq!(
        set.value("caretaker_query_value", &[]),
        None,
        "no value from a timeout"
    );
    // The connection is usable again afterwards: the next statement is not
    // interrupted by the old timer.
    let conn = crate::store::sqlite::open_monitor(&path, Instant::now() + timeout).expect("open");
    let guard = InterruptAfter::start(&conn, timeout).expect("timer");
    drop(guard);
    std::thread::sleep(timeout + Duration::from_millis(100));
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM patterns", [], |r| r.get(0))
        .expect("not interrupted after the guard is gone");
    assert_eq!(n, 3000);
}

#[test]
fn a_good_query_reports_its_duration_and_values_as_plain_sql_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = demo(&dir);
    let conn = Connection::open(&path).expect("open");
    // Odd text and NULLs in the label column, as applications write them.
    conn.execute_batch(
        "INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at, category)
         VALUES ('odd1', 'quote\"and\\backslash', 'x', 0.7, 1, '2026-01-01 00:00:00', NULL),
                ('odd2', '', 'y', 0.2, 0, '2026-01-01 00:00:00', NULL)",
    )
    .expect("odd rows");
    let mut by_type = probe(
        "by_type",
        "SELECT type, COUNT(*) AS n FROM patterns GROUP BY type",
        Duration::from_secs(5),
    );
    by_type.value = Some("n".into());
    by_type.labels = vec!["type".into()];
    let c = QueryCollector::new(&path, vec![by_type], 1000);
    let set = collect(&c);
    let h = histogram(&set, "by_type");
    assert_eq!(h.count(), 1);
    assert!(h.sum() > 0.0 && h.sum() < 5.0);
    let mut stmt = conn
        .prepare("SELECT type, COUNT(*) FROM patterns GROUP BY type")
        .expect("prepare");
    let expected: Vec<(String, f64)> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    assert!(expected.len() > 3, "several types: {expected:?}");
    for (t, n) in &expected {
        let label = if t.is_empty() { "none" } else { t.as_str() };
        let got = set.value(
            "caretaker_query_value",
            &[("query", "by_type"), ("type", label)],
        );
        assert_eq!(got, Some(*n), "type {t:?}");
    }
    // A second run within the interval does not run it again.
    let again = collect(&c);
    assert_eq!(histogram(&again, "by_type").count(), 1);
}

#[test]
fn rows_past_the_label_limit_are_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = demo(&dir);
    let mut ids = probe(
        "ids",
        "SELECT id, confidence FROM patterns ORDER BY id",
        Duration::from_secs(5),
    );
    ids.value = Some("confidence".into());
    ids.labels = vec!["id".into()];
    let c = QueryCollector::new(&path, vec![ids], 7);
    let set = collect(&c);
    let family = set
        .families()
        .iter()
        .find(|f| f.name == "caretaker_query_value")
        .expect("values");
    assert_eq!(family.samples.len(), 7);
}

#[test]
fn a_write_statement_that_reached_the_collector_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = demo(&dir);
    let before = std::fs::read(&path).expect("read");
    let c = QueryCollector::new(
        &path,
        vec![probe(
            "delete",
            "DELETE FROM patterns",
            Duration::from_secs(1),
        )],
        20,
    );
    let set = collect(&c);
    assert_eq!(
        set.value("caretaker_query_failures", &[("reason", "error")]),
        Some(1.0)
    );
    assert_eq!(std::fs::read(&path).expect("read"), before);
}

#[test]
fn the_plan_says_which_probes_read_a_whole_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("memory.db");
    Connection::open(&path)
        .and_then(|c| c.execute_batch(SCHEMA))
        .expect("schema");
    let c = QueryCollector::new(
        &path,
        vec![
            probe(
                "indexed",
                "SELECT id FROM patterns WHERE type = 'code_review' ORDER BY confidence DESC LIMIT 10",
                Duration::from_secs(1),
            ),
            probe(
                "unindexed",
                "SELECT id FROM patterns p WHERE p.pattern_data = 'x'",
                Duration::from_secs(1),
            ),
            probe(
                "cte",
                "WITH t AS (SELECT type FROM patterns WHERE type = 'a') SELECT * FROM t a, t b",
                Duration::from_secs(1),
            ),
            probe(
                "index_scan",
                "SELECT type FROM patterns ORDER BY type",
                Duration::from_secs(1),
            ),
            probe(
                "sorted_scan",
                "SELECT id FROM patterns ORDER BY created_at",
                Duration::from_secs(1),
            ),
        ],
        20,
    );
    let set = collect(&c);
    let full = |q| set.value("caretaker_query_full_scan", &[("query", q)]);
    assert_eq!(full("indexed"), Some(0.0));
    assert_eq!(full("unindexed"), Some(1.0));
    assert_eq!(full("cte"), Some(0.0), "a CTE's aliases are not tables");
    assert_eq!(full("index_scan"), Some(0.0), "a covering index is read");
    assert_eq!(full("sorted_scan"), Some(1.0));
}

#[test]
fn the_tick_lets_every_interval_run_on_time() {
    let with = |secs: &[u64]| {
        let probes: Vec<QueryConfig> = secs
            .iter()
            .map(|s| QueryConfig {
                interval: Duration::from_secs(*s),
                ..probe("p", "SELECT 1", Duration::from_secs(1))
            })
            .collect();
        tick(&probes)
    };
    assert_eq!(with(&[30]), Duration::from_secs(30));
    assert_eq!(with(&[30, 45]), Duration::from_secs(15));
    assert_eq!(with(&[7, 60]), Duration::from_secs(1));
}
