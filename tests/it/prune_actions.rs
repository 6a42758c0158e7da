//! prune_patterns and purge_expired lose nothing: every row they delete is in
//! a complete archive, they delete exactly what the exporter counts, and the
//! archives put the database back as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use caretaker::actions::archive::{
    list_archives, read_archive, remove_stale_temporaries, restore_archive, ArchiveValue,
    SweepOptions,
};
use caretaker::actions::prune::PrunePatterns;
use caretaker::actions::purge::PurgeExpired;
use caretaker::actions::{Action, ActionContext, ActionError, Outcome};
use caretaker::collector::activity::ActivityCollector;
use caretaker::collector::patterns::PatternsCollector;
use caretaker::collector::Collector;
use caretaker::config::{DatabaseConfig, IntegrityMode, PruneConfig, VacuumConfig};
use rusqlite::types::Value;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::common::create_db;

/// Each table's rows by primary key (`namespace` and `key` joined by U+0001).
type Snapshot = BTreeMap<&'static str, BTreeMap<String, Vec<Value>>>;

const TABLES: [(&str, &str); 7] = [
    ("patterns", "id"),
    ("pattern_embeddings", "pattern_id"),
    ("task_trajectories", "id"),
    ("verification_history", "id"),
    ("memory_entries", "namespace || char(1) || key"),
    ("metrics_log", "CAST(id AS TEXT)"),
    ("migrations_applied", "CAST(id AS TEXT)"),
];

/// Random rows on every run. Times sit at least ten days from the 90 and 180
/// day thresholds (and expiries an hour from now), so the seconds between the
/// seed's `datetime('now')` and the action's clock cannot matter.
fn fill(conn: &Connection, patterns: u32) {
    let sql = r#"
PRAGMA foreign_keys = OFF;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :patterns)
INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at, last_used, category)
SELECT 'p' || i || '-' || hex(randomblob(3)),
  CASE i % 4 WHEN 0 THEN 'goap_planning' WHEN 1 THEN 'code "review"' WHEN 2 THEN 'ünï
code' ELSE 'coordination' END,
  '{"steps":' || abs(random()) % 100 || ',"note":"' || hex(randomblob(8 + i % 40)) || '"}',
  (abs(random()) % 1000) / 1000.0, abs(random()) % 6,
  :ago,
  CASE WHEN abs(random()) % 4 = 0 THEN NULL
       ELSE :ago END,
  CASE i % 3 WHEN 0 THEN NULL ELSE 'cat-' || (i % 5) END
FROM n;
INSERT INTO pattern_embeddings SELECT id, randomblob(64), 16, created_at FROM patterns WHERE abs(random()) % 3 > 0;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)
INSERT INTO pattern_embeddings SELECT 'gone-' || i, randomblob(32), 8, datetime('now', '-3 days') FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 700)
INSERT INTO task_trajectories SELECT 't' || i, 'type-' || (i % 3), '{"i":' || i || '}',
  CASE i % 2 WHEN 0 THEN 'success' ELSE 'failure' END, CASE WHEN i % 5 = 0 THEN NULL ELSE abs(random()) % 9000 END,
  :ago FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 700)
INSERT INTO verification_history SELECT 'v' || i, 'agent-' || (i % 4), 't' || i, (abs(random()) % 100) / 100.0,
  CASE i % 3 WHEN 0 THEN 'passed' WHEN 1 THEN 'failed' ELSE 'warning' END,
  CASE WHEN i % 2 = 0 THEN NULL ELSE 'details ' || hex(randomblob(4)) END,
  :ago FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)
INSERT INTO memory_entries SELECT 'ns' || (i % 3), 'k' || i, 'value ' || hex(randomblob(6)),
  CASE WHEN i % 7 = 0 THEN NULL ELSE 3600 END, datetime('now', '-2 days'),
  CASE abs(random()) % 4
    WHEN 0 THEN NULL
    WHEN 1 THEN datetime('now', '-' || (60 + abs(random()) % 9000) || ' minutes')
    WHEN 2 THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (60 + abs(random()) % 9000) || ' minutes')
    ELSE datetime('now', '+' || (60 + abs(random()) % 9000) || ' minutes') END FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30)
INSERT INTO metrics_log (metric_name, metric_value, timestamp) SELECT 'm' || (i % 3), abs(random()) % 1000, datetime('now') FROM n;
INSERT INTO migrations_applied (filename, applied_at) VALUES ('001.sql', '2025-01-01 00:00:00');
"#;
    // 0-70, 100-170 or 200-270 days ago, at any second of the day.
    let ago =
        "datetime('now', '-' || ((abs(random()) % 3) * 100 + abs(random()) % 70) || ' days', \
               '-' || (abs(random()) % 86400) || ' seconds')";
    let sql = sql
        .replace(":patterns", &patterns.to_string())
        .replace(":ago", ago);
    conn.execute_batch(&sql).expect("fill");
}

fn snapshot(conn: &Connection) -> Snapshot {
    let mut out = Snapshot::new();
    for (table, key) in TABLES {
        let mut stmt = conn
            .prepare(&format!("SELECT {key}, * FROM {table}"))
            .expect("select");
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let values = (1..n)
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<Result<_, _>>()?;
                Ok((r.get::<_, String>(0)?, values))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        out.insert(table, rows);
    }
    out
}

fn plain(v: &ArchiveValue) -> Value {
    match v {
        ArchiveValue::Null => Value::Null,
        ArchiveValue::Integer(i) => Value::Integer(*i),
        ArchiveValue::Real(f) => Value::Real(*f),
        ArchiveValue::Text(s) => Value::Text(s.clone()),
        ArchiveValue::TextBytes(b) | ArchiveValue::Blob(b) => Value::Blob(b.clone()),
    }
}

/// Every archived row, by table, as (key, row); a key may repeat.
fn archived(dir: &Path) -> BTreeMap<String, Vec<(String, Vec<Value>)>> {
    let mut out: BTreeMap<String, Vec<(String, Vec<Value>)>> = BTreeMap::new();
    for path in list_archives(dir).expect("list") {
        let a = read_archive(&path).expect("complete archive");
        let col = |name: &str| {
            a.header
                .columns
                .iter()
                .position(|c| c == name)
                .expect("column")
        };
        let key_cols: Vec<usize> = match a.header.table.as_str() {
            "memory_entries" => vec![col("namespace"), col("key")],
            "pattern_embeddings" => vec![col("pattern_id")],
            _ => vec![col("id")],
        };
        for row in a.rows {
            let row: Vec<Value> = row.iter().map(plain).collect();
            let key: Vec<String> = key_cols
                .iter()
                .map(|&i| match &row[i] {
                    Value::Text(s) => s.clone(),
                    other => panic!("key {other:?}"),
                })
                .collect();
            out.entry(a.header.table.clone())
                .or_default()
                .push((key.join("\u{1}"), row));
        }
    }
    out
}

/// before = after ∪ archived, disjoint, by key; archived rows are unchanged.
fn assert_nothing_lost(before: &Snapshot, after: &Snapshot, dir: &Path) {
    let archives = archived(dir);
    for (table, rows) in before {
        let kept: BTreeSet<&String> = after[*table].keys().collect();
        let gone: Vec<(String, Vec<Value>)> = archives.get(*table).cloned().unwrap_or_default();
        for (key, row) in &gone {
            assert!(
                !kept.contains(key),
                "{table} {key} is both kept and archived"
            );
            assert_eq!(rows.get(key), Some(row), "{table} {key} archived as it was");
        }
        let union: BTreeSet<&String> = kept
            .iter()
            .copied()
            .chain(gone.iter().map(|g| &g.0))
            .collect();
        let all: BTreeSet<&String> = rows.keys().collect();
        assert_eq!(
            union, all,
            "{table}: kept and archived rows are exactly the rows before"
        );
    }
}

fn keys(conn: &Connection, sql: &str) -> BTreeSet<String> {
    let mut stmt = conn.prepare(sql).expect(sql);
    let rows = stmt.query_map([], |r| r.get(0)).expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

fn archived_keys(dir: &Path, table: &str) -> BTreeSet<String> {
    archived(dir)
        .remove(table)
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.0)
        .collect()
}

fn database(dir: &Path, enabled: bool) -> DatabaseConfig {
    DatabaseConfig {
        name: "memory".into(),
        path: dir.join("memory.db"),
        integrity_check: IntegrityMode::Quick,
        detail: Default::default(),
        backup: None,
        archive_dir: dir.join("archive"),
        prune: PruneConfig {
            enabled,
            ..PruneConfig::default()
        },
        tune: Default::default(),
        vacuum: VacuumConfig::default(),
        cleanup: Vec::new(),
    }
}

fn ctx(db: &DatabaseConfig, dry_run: bool) -> ActionContext<'_> {
    ActionContext {
        database: db,
        dry_run,
        deadline: Instant::now() + Duration::from_secs(300),
        now: SystemTime::now(),
        stop: Default::default(),
        progress: Default::default(),
    }
}

fn small_batches() -> SweepOptions {
    SweepOptions {
        batch_rows: 97,
        ..SweepOptions::default()
    }
}

fn gauge(c: &dyn Collector, name: &str) -> f64 {
    let set = c
        .collect(Instant::now() + Duration::from_secs(30))
        .expect("collect");
    set.value(name, &[]).unwrap_or(0.0)
}

fn file_hash(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).expect("read db")).to_vec()
}

fn figure(o: &Outcome, name: &str) -> u64 {
    o.figures[name] as u64
}

/// Restores every archive of `dir` into `db` and returns (inserted, already present).
fn restore_all(db: &Path, dir: &Path) -> (u64, u64) {
    list_archives(dir)
        .expect("list")
        .iter()
        .fold((0, 0), |(i, p), a| {
            let r = restore_archive(db, a).expect("restore");
            (i + r.inserted, p + r.already_present)
        })
}

const SEED_CANDIDATES: &str = "SELECT id FROM patterns WHERE (
  (last_used < datetime('now', '-90 days') AND usage_count < 3)
  OR (confidence < 0.3 AND last_used IS NULL)
  OR (created_at < datetime('now', '-180 days') AND usage_count = 0))";

#[test]
fn prune_archives_exactly_the_candidates_and_restore_puts_them_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), true);
    let conn = create_db(&db.path);
    fill(&conn, 3000);
    let before = snapshot(&conn);
    let candidates = keys(&conn, SEED_CANDIDATES);
    let mut embeddings = keys(
        &conn,
        &format!(
            "SELECT pattern_id FROM pattern_embeddings WHERE pattern_id IN ({SEED_CANDIDATES})"
        ),
    );
    let orphans = keys(&conn, "SELECT pe.pattern_id FROM pattern_embeddings pe LEFT JOIN patterns p ON pe.pattern_id = p.id WHERE p.id IS NULL");
    embeddings.extend(orphans.iter().cloned());
    let trajectories = keys(
        &conn,
        "SELECT id FROM task_trajectories WHERE created_at < datetime('now', '-90 days')",
    );
    let verifications = keys(
        &conn,
        "SELECT id FROM verification_history WHERE timestamp < datetime('now', '-90 days')",
    );
    assert!(
        candidates.len() > 500 && candidates.len() < 2500,
        "{}",
        candidates.len()
    );
    assert_eq!(orphans.len(), 60);
    assert!(!trajectories.is_empty() && !verifications.is_empty());
    let exporter = PatternsCollector::new(&db.path, 100, db.prune.clone());
    let candidates_gauge = "caretaker_pattern_prune_candidates";
    assert_eq!(gauge(&exporter, candidates_gauge), candidates.len() as f64);

    let out = PrunePatterns
        .run_with(&ctx(&db, false), &small_batches())
        .expect("prune");

    let after = snapshot(&conn);
    assert_nothing_lost(&before, &after, &db.archive_dir);
    assert_eq!(archived_keys(&db.archive_dir, "patterns"), candidates);
    assert_eq!(
        archived_keys(&db.archive_dir, "pattern_embeddings"),
        embeddings
    );
    assert_eq!(
        archived_keys(&db.archive_dir, "task_trajectories"),
        trajectories
    );
    assert_eq!(
        archived_keys(&db.archive_dir, "verification_history"),
        verifications
    );
    for table in ["memory_entries", "metrics_log", "migrations_applied"] {
        assert_eq!(after[table], before[table], "{table} untouched");
    }
    // The exporter's own query agrees row by row: it finds no candidate among
    // the rows kept, and finds every archived pattern a candidate.
    assert_eq!(gauge(&exporter, candidates_gauge), 0.0);
    let activity = ActivityCollector::new(&db.path, 100);
    assert_eq!(gauge(&activity, "caretaker_orphaned_embeddings"), 0.0);
    let pruned_only = tempfile::tempdir().expect("tempdir");
    let pruned_db = pruned_only.path().join("pruned.db");
    drop(create_db(&pruned_db));
    for a in list_archives(&db.archive_dir).expect("list") {
        if read_archive(&a).expect("read").header.table == "patterns" {
            restore_archive(&pruned_db, &a).expect("restore");
        }
    }
    let pruned_exporter = PatternsCollector::new(&pruned_db, 100, PruneConfig::default());
    assert_eq!(
        gauge(&pruned_exporter, candidates_gauge),
        candidates.len() as f64
    );

    assert_eq!(figure(&out, "patterns_archived"), candidates.len() as u64);
    assert_eq!(figure(&out, "embeddings_archived"), embeddings.len() as u64);
    assert_eq!(
        figure(&out, "trajectories_archived"),
        trajectories.len() as u64
    );
    assert_eq!(
        figure(&out, "verifications_archived"),
        verifications.len() as u64
    );
    let total = candidates.len() + embeddings.len() + trajectories.len() + verifications.len();
    assert_eq!(figure(&out, "rows_deleted"), total as u64);
    let bytes: u64 = list_archives(&db.archive_dir)
        .expect("list")
        .iter()
        .map(|p| p.metadata().expect("meta").len())
        .sum();
    assert_eq!(figure(&out, "archive_bytes"), bytes);

    assert_eq!(restore_all(&db.path, &db.archive_dir), (total as u64, 0));
    assert_eq!(
        snapshot(&conn),
        before,
        "restored database equals the original"
    );
    assert_eq!(restore_all(&db.path, &db.archive_dir), (0, total as u64));
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn dry_run_and_disabled_prune_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), true);
    let conn = create_db(&db.path);
    fill(&conn, 800);
    drop(conn);
    let hash = file_hash(&db.path);
    let conn = Connection::open(&db.path).expect("open");
    let candidates = keys(&conn, SEED_CANDIDATES).len() as u64;
    let expired = keys(
        &conn,
        "SELECT key FROM memory_entries WHERE datetime(expires_at) < datetime('now')",
    )
    .len() as u64;
    drop(conn);

    let out = PrunePatterns.run(&ctx(&db, true)).expect("dry run");
    assert_eq!(figure(&out, "patterns_archived"), candidates);
    assert!(out.summary.starts_with("dry run"), "{}", out.summary);
    let out = PurgeExpired.run(&ctx(&db, true)).expect("dry run");
    assert_eq!(figure(&out, "entries_archived"), expired);
    assert_eq!(file_hash(&db.path), hash);
    assert!(!db.archive_dir.exists(), "a dry run writes no archive");

    let off = database(dir.path(), false);
    match PrunePatterns.run(&ctx(&off, false)) {
        Err(ActionError::NotConfigured(m)) => assert!(m.contains("enabled"), "{m}"),
        other => panic!("disabled prune ran: {other:?}"),
    }
    assert_eq!(file_hash(&db.path), hash);
    assert!(!db.archive_dir.exists());

    let missing = database(&dir.path().join("nowhere"), true);
    assert!(PrunePatterns.run(&ctx(&missing, false)).is_err());
    assert!(PurgeExpired.run(&ctx(&missing, false)).is_err());
    assert!(
        !missing.path.exists(),
        "a missing database is never created"
    );
}

mod refusals;
