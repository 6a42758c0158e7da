//! What tune_patterns refuses or undoes: a failure before its commit, each
//! step's own switch, a drifted schema, a trigger that changes other rows, the
//! maintenance lock, and an undo that would overwrite a row that took a removed
//! row's rowid.

use super::*;

#[test]
fn a_run_that_fails_before_its_commit_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = SystemTime::now();
    let (before, expected, _) = prepared(dir.path(), unix(now), 11);
    let db = database(dir.path(), enabled());
    let seam = SweepOptions {
        fail_before_commit: true,
        ..SweepOptions::default()
    };
    let err = run(&db, now, false, &seam).expect_err("injected");
    assert!(err.to_string().contains("nothing changed"), "{err}");
    assert_eq!(state(&db.path), before);
    // The archives it left are complete, and restoring them changes nothing.
    let archives = list_archives(&db.archive_dir).expect("list");
    assert!(!archives.is_empty());
    caretaker::actions::archive::restore_archives(&db.path, &archives).expect("restore");
    assert_eq!(state(&db.path), before);
    // The next run does the whole job.
    run(&db, now, false, &SweepOptions::default()).expect("run");
    assert_eq!(state(&db.path), expected);
}

#[test]
fn each_step_has_its_own_switch_and_the_action_is_off_until_enabled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = SystemTime::now();
    let (before, _, _) = prepared(dir.path(), unix(now), 5);
    let off = database(dir.path(), TuneConfig::default());
    let err = run(&off, now, false, &SweepOptions::default()).expect_err("off");
    assert!(matches!(err, ActionError::NotConfigured(_)), "{err}");
    assert_eq!(state(&off.path), before);

    let only_promote = database(
        dir.path(),
        TuneConfig {
            demote: false,
            clear_cache: false,
            consolidate: false,
            ..enabled()
        },
    );
    let o = run(&only_promote, now, false, &SweepOptions::default()).expect("run");
    assert!(figure(&o, "patterns_promoted") > 0);
    for name in [
        "patterns_demoted",
        "cache_marks_cleared",
        "duplicates_removed",
        "embeddings_repointed",
    ] {
        assert_eq!(figure(&o, name), 0, "{name}");
    }
    let (p, e) = state(&only_promote.path);
    assert_eq!(p.len(), before.0.len());
    assert_eq!(e, before.1);
    let changed: Vec<_> = p
        .iter()
        .filter(|(k, v)| before.0[*k] != **v)
        .map(|(k, v)| (before.0[k].clone(), v.clone()))
        .collect();
    assert_eq!(changed.len() as u64, figure(&o, "patterns_promoted"));
    // Only confidence moved.
    for (old, new) in changed {
        for (i, (a, b)) in old.iter().zip(&new).enumerate() {
            assert!(i == CONF || a == b, "column {i}: {a:?} -> {b:?}");
        }
    }
}

#[test]
fn a_drifted_schema_is_refused_with_a_message_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("memory.db");
    let conn = Connection::open(&path).expect("open");
    conn.execute_batch(
        "CREATE TABLE patterns (id TEXT PRIMARY KEY, type TEXT, pattern_data TEXT, confidence REAL, usage_count INTEGER);
         INSERT INTO patterns VALUES ('a', 't', 'x', 0.5, 500), ('b', 't', 'x', 0.7, 2), ('c', NULL, NULL, NULL, NULL);",
    )
    .expect("drifted");
    drop(conn);
    let hash = file_hash(&path);
    let db = database(dir.path(), enabled());
    for dry_run in [true, false] {
        let err =
            run(&db, SystemTime::now(), dry_run, &SweepOptions::default()).expect_err("refused");
        let msg = err.to_string();
        assert!(matches!(err, ActionError::Refused(_)), "{msg}");
        assert!(msg.contains("last_used") && msg.contains("demote"), "{msg}");
        assert_eq!(file_hash(&path), hash);
    }
    // Without the steps that need it, the rest runs (no embeddings table).
    let db = database(
        dir.path(),
        TuneConfig {
            demote: false,
            clear_cache: false,
            ..enabled()
        },
    );
    let o = run(&db, SystemTime::now(), false, &SweepOptions::default()).expect("run");
    assert_eq!(figure(&o, "patterns_promoted"), 1);
    assert_eq!(figure(&o, "duplicates_removed"), 1);
    let conn = Connection::open(&path).expect("open");
    let rows: Vec<(String, Option<f64>, Option<i64>)> = conn
        .prepare("SELECT id, confidence, usage_count FROM patterns ORDER BY id")
        .expect("select")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        rows,
        vec![("b".into(), Some(0.7), Some(502)), ("c".into(), None, None)],
        "a (promoted to 0.55) lost to b (0.7), which got both usage counts"
    );
}

#[test]
fn a_trigger_that_changes_other_rows_rolls_the_run_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = SystemTime::now();
    let (before, _, _) = prepared(dir.path(), unix(now), 13);
    let conn = Connection::open(dir.path().join("memory.db")).expect("open");
    conn.execute_batch(
        "CREATE TABLE audit (n INTEGER);
         CREATE TRIGGER t AFTER UPDATE OF confidence ON patterns BEGIN INSERT INTO audit VALUES (1); END;",
    )
    .expect("trigger");
    drop(conn);
    let db = database(dir.path(), enabled());
    let err = run(&db, now, false, &SweepOptions::default()).expect_err("refused");
    assert!(err.to_string().contains("trigger"), "{err}");
    assert_eq!(state(&db.path), before);
    assert!(list_archives(&db.archive_dir).expect("list").is_empty());
}

#[test]
fn tune_patterns_is_an_action_that_takes_the_maintenance_lock() {
    assert!(TunePatterns.mutates());
}

#[test]
fn an_undo_refuses_to_overwrite_a_row_that_took_a_removed_rows_rowid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = SystemTime::now();
    let (before, _, _) = prepared(dir.path(), unix(now), 17);
    let db = database(dir.path(), enabled());
    run(&db, now, false, &SweepOptions::default()).expect("run");
    let (after, _) = state(&db.path);
    let removed = *before
        .0
        .keys()
        .find(|r| !after.contains_key(*r))
        .expect("a removed duplicate");
    // The agents add a pattern after the run, and SQLite hands it the rowid
    // of a row the run removed (as it does for the highest one).
    let conn = Connection::open(&db.path).expect("open");
    conn.execute(
        "INSERT INTO patterns (rowid, id, type, pattern_data, confidence, usage_count, created_at)
         VALUES (?1, 'learned-after-the-run', 't', 'd', 0.5, 1, '2026-01-01 00:00:00')",
        [removed],
    )
    .expect("insert");
    drop(conn);
    let now_state = state(&db.path);
    let archives = list_archives(&db.archive_dir).expect("list");
    let err =
        caretaker::actions::archive::restore_archives(&db.path, &archives).expect_err("refused");
    assert!(err.to_string().contains("now holds another row"), "{err}");
    assert_eq!(state(&db.path), now_state, "a refused restore changed rows");
}
