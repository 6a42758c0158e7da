//! Every figure in `/metrics` agrees with the same figure computed by the
//! runbooks' own SQL on the same file.

use std::time::Duration;

use rusqlite::Connection;

use crate::common::{create_db, one_database_config, value, Caretaker, Sample};

/// Fills a database with varied rows, random on every run, including awkward
/// label values, prune candidates, invalid rows, duplicates and orphans.
pub fn fill(conn: &Connection) {
    conn.execute_batch(
        r#"
PRAGMA foreign_keys = OFF; -- orphaned embeddings are part of what is measured
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at, last_used, category)
SELECT 'p' || i,
  CASE i % 7 WHEN 0 THEN 'goap_planning' WHEN 1 THEN 'code "review"' WHEN 2 THEN 'back\slash'
             WHEN 3 THEN 'multi
line' WHEN 4 THEN 'ünïcødé ✓' WHEN 5 THEN '' ELSE 'coordination' END,
  'data-' || (i % 2800),
  CASE WHEN i % 97 = 0 THEN 1.5 WHEN i % 89 = 0 THEN -0.2 ELSE (abs(random()) % 1000) / 1000.0 END,
  CASE WHEN i % 83 = 0 THEN -1 ELSE abs(random()) % 30 END,
  datetime('now', '-' || (abs(random()) % 400) || ' days', '-30 minutes'), -- never on a threshold's second
  CASE WHEN i % 6 = 0 THEN NULL
       WHEN i % 5 = 0 THEN datetime('now', '-' || (abs(random()) % 50) || ' minutes')
       ELSE datetime('now', '-' || (abs(random()) % 200) || ' days', '-30 minutes') END,
  CASE i % 5 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'alpha' WHEN 3 THEN 'beta' ELSE 'ga"mm\a' END
FROM n;
INSERT INTO pattern_embeddings SELECT id, x'00', 1, created_at FROM patterns WHERE rowid % 3 = 0;
INSERT INTO pattern_embeddings VALUES ('gone-1', x'00', 1, datetime('now')), ('gone-2', x'00', 1, datetime('now'));
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
INSERT INTO memory_entries SELECT 'ns' || (i % 3), 'k' || i, 'v', 60, datetime('now', '-2 days'),
  CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN datetime('now', '-' || i || ' minutes')
  ELSE datetime('now', '+' || i || ' minutes') END FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
INSERT INTO verification_history SELECT 'v' || i, 'agent-' || (i % 4), 't' || i, (abs(random()) % 100) / 100.0,
  CASE i % 3 WHEN 0 THEN 'passed' WHEN 1 THEN 'failed' ELSE 'warning' END, NULL, datetime('now') FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
INSERT INTO task_trajectories SELECT 't' || i, 'type-' || (i % 3), '{}', CASE i % 2 WHEN 0 THEN 'success' ELSE 'failure' END,
  i, datetime('now') FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
INSERT INTO metrics_log (metric_name, metric_value, timestamp) SELECT 'm' || (i % 3), abs(random()) % 1000, datetime('now') FROM n;
INSERT INTO migrations_applied (filename, applied_at, status) VALUES
  ('001.sql', '2025-01-01 00:00:00', 'success'), ('002.sql', '2025-02-01 12:00:00', 'success'),
  ('003.sql', '2025-03-01 00:00:00', 'failed');
"#,
    )
    .expect("fill");
}

fn q(conn: &Connection, sql: &str) -> f64 {
    conn.query_row(sql, [], |r| r.get::<_, Option<f64>>(0))
        .expect(sql)
        .unwrap_or(0.0)
}

fn label_of(raw: Option<String>) -> String {
    raw.filter(|s| !s.is_empty())
        .unwrap_or_else(|| "none".into())
}

fn assert_close(what: &str, got: Option<f64>, want: f64) {
    let got = got.unwrap_or_else(|| panic!("{what} missing"));
    assert!(
        (got - want).abs() < 1e-9 * want.abs().max(1.0),
        "{what}: /metrics says {got}, SQL says {want}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_match_the_runbooks_sql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = create_db(&dir.path().join("memory.db"));
    fill(&conn);
    let ct = Caretaker::start(dir, &one_database_config("")).await;
    let m: Vec<Sample> = ct.metrics().await;
    let db = [("database", "memory")];
    let get = |name: &str, extra: &[(&str, &str)]| {
        let labels: Vec<(&str, &str)> = db.iter().chain(extra).copied().collect();
        value(&m, name, &labels)
    };

    // Tiers per type, with seed 000's CASE.
    let mut stmt = conn
        .prepare(
            "SELECT type, CASE WHEN confidence >= 0.9 THEN 'excellent' WHEN confidence >= 0.8 THEN 'very_good'
               WHEN confidence >= 0.7 THEN 'good' WHEN confidence >= 0.6 THEN 'fair'
               WHEN confidence >= 0.5 THEN 'moderate' ELSE 'low' END AS tier, COUNT(*)
             FROM patterns GROUP BY type, tier",
        )
        .expect("prepare");
    let rows: Vec<(String, String, f64)> = stmt
        .query_map([], |r| Ok((label_of(r.get(0)?), r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(rows.len() > 20, "the data covers many type/tier pairs");
    for (ty, tier, n) in &rows {
        assert_close(
            &format!("patterns {ty:?} {tier}"),
            get(
                "caretaker_patterns",
                &[("pattern_type", ty), ("confidence_tier", tier)],
            ),
            *n,
        );
    }
    let total: f64 = m
        .iter()
        .filter(|s| s.name == "caretaker_patterns")
        .map(|s| s.value)
        .sum();
    assert_close(
        "sum of caretaker_patterns",
        Some(total),
        q(&conn, "SELECT COUNT(*) FROM patterns"),
    );

    for (ty, avg_c, avg_u) in conn
        .prepare("SELECT type, AVG(confidence), AVG(usage_count) FROM patterns GROUP BY type")
        .expect("prepare")
        .query_map([], |r| {
            Ok((
                label_of(r.get(0)?),
                r.get::<_, f64>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })
        .expect("query")
        .map(|r| r.expect("row"))
    {
        assert_close(
            "confidence average",
            get(
                "caretaker_pattern_confidence_average",
                &[("pattern_type", &ty)],
            ),
            avg_c,
        );
        assert_close(
            "usage average",
            get("caretaker_pattern_usage_average", &[("pattern_type", &ty)]),
            avg_u,
        );
    }
    // NULL and empty categories share `none`; awkward text survives escaping.
    assert_close(
        "category none",
        get("caretaker_patterns_by_category", &[("category", "none")]),
        q(
            &conn,
            "SELECT COUNT(*) FROM patterns WHERE category IS NULL OR category = ''",
        ),
    );
    assert_close(
        "category with quote and backslash",
        get(
            "caretaker_patterns_by_category",
            &[("category", "ga\"mm\\a")],
        ),
        q(
            &conn,
            "SELECT COUNT(*) FROM patterns WHERE category = 'ga\"mm\\a'",
        ),
    );

    let seed = [
        ("caretaker_patterns_hot", "SELECT COUNT(*) FROM patterns WHERE usage_count > 10"),
        ("caretaker_patterns_cold", "SELECT COUNT(*) FROM patterns WHERE usage_count <= 2"),
        ("caretaker_patterns_recently_used", "SELECT COUNT(*) FROM patterns WHERE last_used > datetime('now', '-1 hour')"),
        (
            "caretaker_pattern_cache_hit_ratio",
            "SELECT 1.0 * SUM(CASE WHEN last_used > datetime('now', '-1 hour') THEN usage_count ELSE 0 END) / NULLIF(SUM(usage_count), 0) FROM patterns",
        ),
        (
            "caretaker_pattern_prune_candidates",
            "SELECT COUNT(*) FROM patterns WHERE ((last_used < datetime('now', '-90 days') AND usage_count < 3)
               OR (confidence < 0.3 AND last_used IS NULL) OR (created_at < datetime('now', '-180 days') AND usage_count = 0))",
        ),
        (
            "caretaker_pattern_duplicates",
            "SELECT SUM(c) FROM (SELECT COUNT(*) c FROM patterns GROUP BY type, pattern_data HAVING COUNT(*) > 1)",
        ),
        (
            "caretaker_pattern_invalid_rows",
            "SELECT COUNT(*) FROM patterns WHERE confidence < 0 OR confidence > 1 OR usage_count < 0 OR created_at IS NULL",
        ),
        (
            "caretaker_orphaned_embeddings",
            "SELECT COUNT(*) FROM pattern_embeddings pe LEFT JOIN patterns p ON pe.pattern_id = p.id WHERE p.id IS NULL",
        ),
        (
            "caretaker_memory_entries_expired",
            "SELECT COUNT(*) FROM memory_entries WHERE expires_at IS NOT NULL AND datetime(expires_at) < datetime('now')",
        ),
        ("caretaker_migrations_applied", "SELECT COUNT(*) FROM migrations_applied WHERE status = 'success'"),
        ("caretaker_migration_last_applied_timestamp_seconds", "SELECT unixepoch('2025-02-01 12:00:00')"),
        ("caretaker_database_pages", "SELECT * FROM pragma_page_count"),
        ("caretaker_database_freelist_pages", "SELECT * FROM pragma_freelist_count"),
        ("caretaker_database_page_size_bytes", "SELECT * FROM pragma_page_size"),
    ];
    for (name, sql) in seed {
        let want = q(&conn, sql);
        assert!(
            want != 0.0 || name.contains("freelist"),
            "{name}: the test data must make this non-zero"
        );
        assert_close(name, get(name, &[]), want);
    }
    for table in [
        "patterns",
        "pattern_embeddings",
        "memory_entries",
        "verification_history",
        "task_trajectories",
        "metrics_log",
    ] {
        assert_close(
            table,
            get("caretaker_table_rows", &[("table", table)]),
            q(&conn, &format!("SELECT COUNT(*) FROM {table}")),
        );
    }
    for (agent, status, n, avg) in conn
        .prepare("SELECT agent_name, verification_status, COUNT(*), (SELECT AVG(truth_score) FROM verification_history v2 WHERE v2.agent_name = v.agent_name) FROM verification_history v GROUP BY 1, 2")
        .expect("prepare")
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, f64>(2)?, r.get::<_, f64>(3)?)))
        .expect("query")
        .map(|r| r.expect("row"))
    {
        assert_close("verifications", get("caretaker_verifications", &[("agent", &agent), ("status", &status)]), n);
        assert_close("truth score", get("caretaker_verification_truth_score_average", &[("agent", &agent)]), avg);
    }
    let latest = q(
        &conn,
        "SELECT metric_value FROM metrics_log WHERE metric_name = 'm1' ORDER BY id DESC LIMIT 1",
    );
    assert_close(
        "app metric",
        get("caretaker_app_metric", &[("metric_name", "m1")]),
        latest,
    );
    assert_close(
        "trajectories",
        get("caretaker_trajectories", &[("task_type", "type-1"), ("outcome", "failure")]),
        q(&conn, "SELECT COUNT(*) FROM task_trajectories WHERE task_type = 'type-1' AND outcome = 'failure'"),
    );
    assert_eq!(get("caretaker_database_up", &[]), Some(1.0));
    let m = ct
        .wait_for("the integrity check", Duration::from_secs(20), |m| {
            value(m, "caretaker_database_integrity_ok", &[]).is_some()
        })
        .await;
    assert_eq!(value(&m, "caretaker_database_integrity_ok", &[]), Some(1.0));
    assert_close(
        "foreign key violations",
        value(&m, "caretaker_database_foreign_key_violations", &[]),
        q(&conn, "SELECT COUNT(*) FROM pragma_foreign_key_check"),
    );
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_values_are_bounded_to_the_top_n() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = create_db(&dir.path().join("memory.db"));
    conn.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 900)
         INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at, category)
         SELECT 'p' || i, 'type-' || (i % 30), 'x', 0.5, 1, datetime('now'), 'cat-' || (i % 40) FROM n;
         INSERT INTO patterns VALUES ('big', 'type-0', 'y', 0.9, 1, datetime('now'), NULL, 'cat-0');",
    )
    .expect("fill");
    let ct = Caretaker::start(dir, &one_database_config("label_limit = 5")).await;
    let m = ct.metrics().await;
    let types: std::collections::BTreeSet<_> = m
        .iter()
        .filter(|s| s.name == "caretaker_patterns")
        .map(|s| s.labels["pattern_type"].clone())
        .collect();
    assert_eq!(types.len(), 6, "5 kept types and other: {types:?}");
    assert!(
        types.contains("other") && types.contains("type-0"),
        "{types:?}"
    );
    let total: f64 = m
        .iter()
        .filter(|s| s.name == "caretaker_patterns")
        .map(|s| s.value)
        .sum();
    assert_eq!(total, q(&conn, "SELECT COUNT(*) FROM patterns"));
    let cats = m
        .iter()
        .filter(|s| s.name == "caretaker_patterns_by_category")
        .count();
    assert_eq!(cats, 6);
    let other = value(
        &m,
        "caretaker_patterns_by_category",
        &[("category", "other")],
    )
    .expect("other");
    assert_eq!(
        other,
        q(&conn, "SELECT COUNT(*) FROM patterns")
            - m.iter()
                .filter(|s| s.name == "caretaker_patterns_by_category"
                    && s.labels["category"] != "other")
                .map(|s| s.value)
                .sum::<f64>()
    );
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_wal_writer_is_never_blocked_and_changes_show() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("memory.db");
    let conn = create_db(&path);
    conn.execute_batch("PRAGMA journal_mode=WAL;").expect("wal");
    drop(conn);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let conn = Connection::open(&path).expect("open");
            // No busy timeout: any lock held by caretaker would fail this writer at once.
            conn.busy_timeout(Duration::from_millis(0))
                .expect("timeout");
            let mut written = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                conn.execute(
                    "INSERT INTO patterns (id, type, pattern_data, created_at) VALUES (?1, 't', 'd', datetime('now'))",
                    [format!("w{written}")],
                )
                .expect("a write failed while caretaker was reading");
                written += 1;
            }
            written
        })
    };
    let ct = Caretaker::start(
        dir,
        &one_database_config("database_interval = \"100ms\"\npatterns_interval = \"100ms\""),
    )
    .await;
    let m = ct
        .wait_for("table rows to grow", Duration::from_secs(20), |m| {
            value(m, "caretaker_table_rows", &[("table", "patterns")]).unwrap_or(0.0) > 1000.0
        })
        .await;
    assert!(value(&m, "caretaker_database_wal_size_bytes", &[]).expect("wal size") > 0.0);
    assert_eq!(value(&m, "caretaker_database_wal_mode", &[]), Some(1.0));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().expect("writer never failed");
    assert!(written > 1000);
    ct.stop().await;
}
