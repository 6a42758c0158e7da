//! What stops a prune or a purge part-way loses nothing: a failure before the
//! commit, a trigger deleting rows that were not archived, a busy database, a
//! deadline already passed, an application writing in WAL mode meanwhile; and
//! the prune benchmark.

use super::*;

#[test]
fn failure_before_commit_keeps_the_rows_and_a_complete_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), true);
    let conn = create_db(&db.path);
    fill(&conn, 1500);
    let before = snapshot(&conn);
    let crash = SweepOptions {
        fail_before_commit: true,
        ..small_batches()
    };
    match PrunePatterns.run_with(&ctx(&db, false), &crash) {
        Err(ActionError::Failed(m)) => {
            assert!(m.contains("injected") && m.contains("rolled back"), "{m}")
        }
        other => panic!("expected the injected failure: {other:?}"),
    }
    assert_eq!(snapshot(&conn), before, "the batch was rolled back");
    let first = archived(&db.archive_dir);
    assert_eq!(
        first["patterns"].len(),
        97,
        "one complete batch was archived"
    );
    assert!(first.contains_key("pattern_embeddings"));
    for (table, rows) in &first {
        for (key, row) in rows {
            assert_eq!(
                before[table.as_str()].get(key),
                Some(row),
                "{table} {key} is still in the database"
            );
        }
    }

    // A crash while writing leaves a .tmp: never read, removed by the next run.
    let stale = db
        .archive_dir
        .join("patterns-20261101T020000Z-prune.jsonl.zst.tmp");
    std::fs::write(&stale, b"half an archive").expect("write");
    assert!(!list_archives(&db.archive_dir)
        .expect("list")
        .contains(&stale));
    assert!(read_archive(&stale).is_err());
    let out = PrunePatterns
        .run_with(&ctx(&db, false), &small_batches())
        .expect("prune");
    assert!(!stale.exists(), "the next run removed the stale temporary");
    assert_nothing_lost(&before, &snapshot(&conn), &db.archive_dir);
    let (inserted, present) = restore_all(&db.path, &db.archive_dir);
    assert_eq!(inserted, figure(&out, "rows_deleted"));
    assert_eq!(
        present,
        first.values().map(|r| r.len() as u64).sum::<u64>(),
        "the failed batch's archive restores nothing twice"
    );
    assert_eq!(snapshot(&conn), before);
    std::fs::write(&stale, b"again").expect("write");
    assert_eq!(
        remove_stale_temporaries(&db.archive_dir).expect("clean"),
        vec![stale]
    );
}

#[test]
fn a_trigger_deleting_unarchived_rows_rolls_the_batch_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), true);
    let conn = create_db(&db.path);
    fill(&conn, 500);
    conn.execute_batch("CREATE TRIGGER sneaky AFTER DELETE ON patterns BEGIN DELETE FROM metrics_log WHERE id = (SELECT MIN(id) FROM metrics_log); END;")
        .expect("trigger");
    let before = snapshot(&conn);
    match PrunePatterns.run_with(&ctx(&db, false), &small_batches()) {
        Err(ActionError::Failed(m)) => assert!(m.contains("trigger or cascade"), "{m}"),
        other => panic!("expected a refusal: {other:?}"),
    }
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn busy_database_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), true);
    let conn = create_db(&db.path);
    fill(&conn, 500);
    let before = snapshot(&conn);
    let holder = Connection::open(&db.path).expect("open");
    holder.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let short = SweepOptions {
        busy_timeout: Duration::from_millis(200),
        ..SweepOptions::default()
    };
    let started = Instant::now();
    assert!(matches!(
        PrunePatterns.run_with(&ctx(&db, false), &short),
        Err(ActionError::Busy(_))
    ));
    assert!(matches!(
        PurgeExpired.run_with(&ctx(&db, false), &short),
        Err(ActionError::Busy(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up after the busy timeout"
    );
    holder.execute_batch("ROLLBACK").expect("unlock");
    assert_eq!(snapshot(&conn), before);
    assert!(list_archives(&db.archive_dir).expect("list").is_empty());
}

#[test]
fn a_deadline_already_passed_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), true);
    let conn = create_db(&db.path);
    fill(&conn, 300);
    let before = snapshot(&conn);
    let mut late = ctx(&db, false);
    late.deadline = Instant::now();
    assert!(matches!(
        PrunePatterns.run(&late),
        Err(ActionError::Deadline(_))
    ));
    assert!(matches!(
        PurgeExpired.run(&late),
        Err(ActionError::Deadline(_))
    ));
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn purge_expired_while_the_application_writes_in_wal_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), false); // purge is not gated by prune.enabled
    let conn = create_db(&db.path);
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .expect("wal");
    fill(&conn, 200);
    let before = snapshot(&conn);
    let expired = keys(&conn, "SELECT namespace || char(1) || key FROM memory_entries WHERE expires_at IS NOT NULL AND datetime(expires_at) < datetime('now')");
    assert!(expired.len() > 100);

    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU32::new(0));
    let writer = {
        let (path, stop, progress) = (db.path.clone(), stop.clone(), progress.clone());
        std::thread::spawn(move || {
            let w = Connection::open(&path).expect("open");
            w.busy_timeout(Duration::from_secs(5)).expect("timeout");
            let mut written = 0u32;
            while !stop.load(Ordering::Relaxed) || written < 300 {
                let expires = if written.is_multiple_of(2) {
                    "-5 minutes"
                } else {
                    "+5 minutes"
                };
                w.execute(
                    "INSERT INTO memory_entries VALUES ('live', ?1, 'v', 60, datetime('now'), datetime('now', ?2))",
                    rusqlite::params![format!("w{written}"), expires],
                )
                .expect("the application's write succeeds during the purge");
                written += 1;
                progress.store(written, Ordering::Relaxed);
            }
            written
        })
    };
    while progress.load(Ordering::Relaxed) < 20 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let opts = SweepOptions {
        batch_rows: 10,
        ..SweepOptions::default()
    };
    let out = PurgeExpired
        .run_with(&ctx(&db, false), &opts)
        .expect("purge");
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");

    let after = snapshot(&conn);
    let purged = archived_keys(&db.archive_dir, "memory_entries");
    assert_eq!(figure(&out, "entries_archived"), purged.len() as u64);
    assert_eq!(figure(&out, "rows_deleted"), purged.len() as u64);
    let new: BTreeSet<String> = (0..written).map(|i| format!("live\u{1}w{i}")).collect();
    let kept: BTreeSet<String> = after["memory_entries"].keys().cloned().collect();
    let mut all: BTreeSet<String> = before["memory_entries"].keys().cloned().collect();
    all.extend(new.iter().cloned());
    assert!(kept.is_disjoint(&purged));
    assert_eq!(kept.union(&purged).cloned().collect::<BTreeSet<_>>(), all);
    assert!(
        expired.is_subset(&purged),
        "every entry expired at the start is purged"
    );
    let old_purged: BTreeSet<String> = purged.difference(&new).cloned().collect();
    assert_eq!(old_purged, expired, "nothing unexpired was purged");
    for (table, rows) in &before {
        if *table != "memory_entries" {
            assert_eq!(&after[table], rows, "{table} untouched");
        }
    }
    restore_all(&db.path, &db.archive_dir);
    let restored = snapshot(&conn);
    for (key, row) in &before["memory_entries"] {
        assert_eq!(restored["memory_entries"].get(key), Some(row));
    }
    assert_eq!(restored["memory_entries"].len(), all.len());
}

/// The measurement in the report: `cargo test --release -- --ignored prune_benchmark --nocapture`.
#[test]
#[ignore]
fn prune_benchmark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), true);
    let conn = create_db(&db.path);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
         INSERT INTO patterns SELECT 'pattern-' || i, 'type-' || (i % 7),
           '{\"steps\":[' || (i % 50) || '],\"context\":\"' || hex(randomblob(80)) || '\"}',
           CASE WHEN i % 3 = 0 THEN 0.1 ELSE 0.5 + (i % 50) / 100.0 END, CASE WHEN i % 3 = 0 THEN 0 ELSE 5 END,
           datetime('now', '-' || (i % 60) || ' days'), CASE WHEN i % 3 = 0 THEN NULL ELSE datetime('now', '-1 days') END,
           'category-' || (i % 11) FROM n;
         INSERT INTO pattern_embeddings SELECT id, randomblob(256), 64, created_at FROM patterns;",
    )
    .expect("fill");
    let size = std::fs::metadata(&db.path).expect("meta").len();
    let started = Instant::now();
    let out = PrunePatterns.run(&ctx(&db, false)).expect("prune");
    let took = started.elapsed();
    let archives = list_archives(&db.archive_dir).expect("list");
    println!(
        "database {:.1} MB; {}; {:.2} s; {} archives, {:.1} MB",
        size as f64 / 1e6,
        out.summary,
        took.as_secs_f64(),
        archives.len(),
        figure(&out, "archive_bytes") as f64 / 1e6
    );
    assert_eq!(figure(&out, "patterns_archived"), 100_000);
    let started = Instant::now();
    let (inserted, _) = restore_all(&db.path, &db.archive_dir);
    println!(
        "restore of {inserted} rows: {:.2} s",
        started.elapsed().as_secs_f64()
    );
}
