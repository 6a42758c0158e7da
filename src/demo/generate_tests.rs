//! Tests of the demo generator on real files.
use super::*;

fn count(conn: &Connection, sql: &str) -> u64 {
    conn.query_row(sql, [], |r| r.get::<_, f64>(0)).unwrap() as u64
}

/// Queries from the runbooks (and a few more) that must each find rows in the demo.
const MUST_MATCH: [&str; 18] = [
    "SELECT COUNT(*) FROM patterns WHERE confidence < 0 OR confidence > 1 OR usage_count < 0",
    "SELECT COUNT(*) FROM patterns WHERE last_used < datetime('now', '-90 days') AND usage_count < 3",
    "SELECT COUNT(*) FROM patterns WHERE confidence < 0.3 AND last_used IS NULL",
    "SELECT COUNT(*) FROM patterns WHERE created_at < datetime('now', '-180 days') AND usage_count = 0",
    "SELECT COUNT(*) FROM (SELECT 1 FROM patterns GROUP BY type, pattern_data HAVING COUNT(*) > 1)",
    "SELECT COUNT(*) FROM patterns WHERE last_used > datetime('now', '-1 hour')",
    "SELECT COUNT(*) FROM patterns WHERE usage_count > 100",
    "SELECT COUNT(*) FROM patterns WHERE usage_count > 10",
    "SELECT COUNT(*) FROM patterns WHERE usage_count <= 2",
    "SELECT COUNT(*) FROM patterns WHERE category IS NULL",
    "SELECT COUNT(*) FROM patterns WHERE category = ''",
    "SELECT COUNT(*) FROM memory_entries WHERE expires_at IS NULL",
    "SELECT COUNT(*) FROM task_trajectories WHERE created_at < datetime('now', '-90 days')",
    "SELECT COUNT(*) FROM task_trajectories WHERE created_at >= datetime('now', '-90 days')",
    "SELECT COUNT(*) FROM task_trajectories WHERE outcome = 'timeout'",
    "SELECT COUNT(*) FROM verification_history WHERE timestamp < datetime('now', '-90 days')",
    "SELECT COUNT(*) FROM verification_history WHERE verification_status = 'failed'",
    "SELECT COUNT(*) FROM metrics_log WHERE timestamp > datetime('now', '-7 days')",
];

#[test]
fn fills_every_table_as_the_summary_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let sum = generate(&path, &GenerateOptions::default()).unwrap();
    let wal = std::fs::metadata(dir.path().join("memory.db-wal"));
    assert!(wal.map_or(true, |m| m.len() == 0), "WAL not checkpointed");
    let conn = Connection::open(&path).unwrap();
    let text = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap();
    assert_eq!(text("PRAGMA journal_mode"), "wal");
    assert_eq!(text("PRAGMA integrity_check"), "ok");
    let indexes = "SELECT COUNT(*) FROM sqlite_schema WHERE name GLOB 'idx_*'";
    assert_eq!(count(&conn, indexes), 7);
    #[rustfmt::skip]
    let tables = [
        ("patterns", sum.patterns), ("pattern_embeddings", sum.embeddings),
        ("task_trajectories", sum.trajectories), ("verification_history", sum.verifications),
        ("memory_entries", sum.memory_entries), ("metrics_log", sum.metrics_log),
        ("migrations_applied", sum.migrations),
    ];
    for (table, n) in tables {
        assert!(n > 0, "{table} is empty");
        let rows = count(&conn, &format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(rows, n, "{table}");
    }
    assert_eq!(
        [sum.patterns, sum.trajectories, sum.memory_entries],
        [5000, 2500, 1000]
    );
    assert!((2_000..=3_000).contains(&sum.metrics_log), "{sum:?}");
    // The runbook's own integrity queries find exactly what the summary reports.
    let expired = "SELECT COUNT(*) FROM memory_entries
        WHERE expires_at IS NOT NULL AND datetime(expires_at) < datetime('now')";
    assert!(sum.expired_entries > 0);
    assert_eq!(count(&conn, expired), sum.expired_entries);
    let orphans = "SELECT COUNT(*) FROM pattern_embeddings pe
        LEFT JOIN patterns p ON pe.pattern_id = p.id WHERE p.id IS NULL";
    assert!(sum.orphaned_embeddings > 0);
    assert_eq!(count(&conn, orphans), sum.orphaned_embeddings);
    for sql in MUST_MATCH {
        assert!(count(&conn, sql) > 0, "no rows for {sql}");
    }
    let tiers = "SELECT COUNT(DISTINCT CASE WHEN confidence >= 0.9 THEN 6
        WHEN confidence >= 0.8 THEN 5 WHEN confidence >= 0.7 THEN 4 WHEN confidence >= 0.6
        THEN 3 WHEN confidence >= 0.5 THEN 2 ELSE 1 END) FROM patterns";
    assert_eq!(count(&conn, tiers), 6);
    let good = "SELECT COUNT(*) FROM patterns WHERE confidence >= 0.7 AND confidence < 0.8";
    assert!(count(&conn, good) > 1000, "good should be the largest tier");
    assert!(count(&conn, "SELECT COUNT(DISTINCT type) FROM patterns") >= 8);
    let hit = "SELECT 100.0 * SUM(usage_count)
        FILTER (WHERE last_used > datetime('now', '-1 hour')) / SUM(usage_count) FROM patterns";
    let hit = count(&conn, hit);
    assert!((20..90).contains(&hit), "cache hit rate {hit}%");
    let size = count(&conn, "SELECT AVG(length(pattern_data)) FROM patterns");
    assert!(
        (180..=220).contains(&size),
        "pattern_data averages {size} bytes"
    );
    let blobs = "SELECT COUNT(*) FROM pattern_embeddings
        WHERE length(embedding) <> 4 * dimension";
    assert_eq!(count(&conn, blobs), 0);
    let migrations = "SELECT COUNT(*) FROM migrations_applied
        WHERE filename GLOB '[0-9]*_*.sql' AND status = 'success'";
    assert_eq!(count(&conn, migrations), sum.migrations);
}

#[test]
fn refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    std::fs::write(&path, b"precious").unwrap();
    let err = generate(&path, &GenerateOptions::default()).unwrap_err();
    assert!(matches!(err, GenerateError::Exists(ref p) if p == &path));
    let message = err.to_string();
    assert!(
        message.ends_with("already exists; refusing to overwrite it"),
        "{message}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn same_options_give_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = GenerateOptions {
        patterns: 1500,
        pattern_bytes: 120,
        seed: 9,
        now: 0,
    };
    opts.now = 1_760_000_000;
    let digest = |name: &str, opts: &GenerateOptions| {
        let path = dir.path().join(name);
        let sum = generate(&path, opts).unwrap();
        let conn = Connection::open(&path).unwrap();
        let sql = "SELECT (SELECT group_concat(id || confidence, ',' ORDER BY id) FROM patterns)
            || (SELECT group_concat(key || ifnull(expires_at, '-') ORDER BY key) FROM memory_entries)";
        let text: String = conn.query_row(sql, [], |r| r.get(0)).unwrap();
        (sum, text)
    };
    let first = digest("a.db", &opts);
    assert_eq!(first, digest("b.db", &opts));
    opts.seed = 10;
    assert_ne!(first.1, digest("c.db", &opts).1);
}

#[test]
fn times_read_like_sqlite_datetime() {
    let conn = Connection::open_in_memory().unwrap();
    // Epoch, 2000-02-29 (start and end), 2024-02-29, 2100-01-01, 2024-12-31 23:59:59, ...
    #[rustfmt::skip]
    let times = [0, 951_782_400, 951_868_799, 1_709_164_800, 4_102_444_800, 1_735_689_599,
        1_760_000_000, -86_401];
    for t in times {
        let sql = "SELECT datetime(?1, 'unixepoch')";
        let want: String = conn.query_row(sql, [t], |r| r.get(0)).unwrap();
        assert_eq!(sqlite_time(t), want, "{t}");
    }
}
