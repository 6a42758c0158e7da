//! `caretaker restore --table`: one table comes back from a backup, with the
//! real binary, while every other table stays byte for byte as it was (a
//! hash per table), the table's previous rows are archived, and a restore
//! that would break a foreign key changes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use caretaker::actions::archive::{list_archives, read_archive};
use caretaker::demo::generate::{generate, GenerateOptions};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

const CONFIG: &str = r#"
[[database]]
name = "memory"
path = "memory.db"
[database.backup]
dir = "backups"

[responder]
state_file = "state.db"
"#;

fn caretaker_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .current_dir(dir)
        .args(args)
        .arg("--config.file=caretaker.toml")
        .output()
        .expect("run caretaker")
}

fn ok_in(dir: &Path, args: &[&str]) -> String {
    let out = caretaker_in(dir, args);
    assert!(
        out.status.success(),
        "caretaker {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each table's SHA-256 over its rows in rowid order, every value with its
/// SQLite type and exact bytes (REALs by their bits).
fn table_hashes(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let conn = Connection::open(path).expect("open");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    tables
        .into_iter()
        .map(|t| {
            let mut hash = Sha256::new();
            let mut stmt = conn
                .prepare(&format!("SELECT rowid, * FROM \"{t}\" ORDER BY rowid"))
                .expect("select");
            let n = stmt.column_count();
            let mut rows = stmt.query([]).expect("rows");
            while let Some(row) = rows.next().expect("row") {
                for i in 0..n {
                    match row.get_ref(i).expect("value") {
                        ValueRef::Null => hash.update(b"n"),
                        ValueRef::Integer(v) => hash.update(format!("i{v}")),
                        ValueRef::Real(v) => hash.update(format!("r{:x}", v.to_bits())),
                        ValueRef::Text(v) => {
                            hash.update(format!("t{}:", v.len()));
                            hash.update(v);
                        }
                        ValueRef::Blob(v) => {
                            hash.update(format!("b{}:", v.len()));
                            hash.update(v);
                        }
                    }
                }
                hash.update(b"\n");
            }
            (t, hash.finalize().to_vec())
        })
        .collect()
}

/// Patterns by id: (confidence bits, usage, pattern_data).
fn patterns(path: &Path) -> BTreeMap<String, (u64, i64, String)> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT id, confidence, usage_count, pattern_data FROM patterns")
        .expect("select");
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get::<_, f64>(1)?.to_bits(), r.get(2)?, r.get(3)?),
        ))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// A demo database (with its planted orphaned embeddings, NULLs and odd
/// text) and one verified backup of it; returns the backup-time patterns.
fn with_backup() -> (tempfile::TempDir, BTreeMap<String, (u64, i64, String)>) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("caretaker.toml"), CONFIG).expect("config");
    let opts = GenerateOptions {
        patterns: 1_500,
        ..GenerateOptions::default()
    };
    generate(&dir.path().join("memory.db"), &opts).expect("generate");
    ok_in(dir.path(), &["run", "backup"]);
    let at_backup = patterns(&dir.path().join("memory.db"));
    (dir, at_backup)
}

/// Changes after the backup: patterns without embeddings deleted and
/// changed, new ones added, and other tables changed too.
fn change_live(path: &Path) {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(
        "DELETE FROM patterns WHERE rowid IN (SELECT rowid FROM patterns
           WHERE id NOT IN (SELECT pattern_id FROM pattern_embeddings) ORDER BY rowid LIMIT 40);
         UPDATE patterns SET confidence = confidence / 3.0, usage_count = usage_count + 7
           WHERE rowid % 11 = 0;
         INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at)
           VALUES ('new-1', 'ünï\ncode', '{\"n\":1}', 0.1 + 0.2, 3, datetime('now')),
                  ('new-2', 'code \"review\"', 'x', 0.5, 0, datetime('now'));
         UPDATE memory_entries SET value = value || ' changed' WHERE rowid % 3 = 0;
         DELETE FROM task_trajectories WHERE rowid % 5 = 0;",
    )
    .expect("change");
}

#[test]
fn replace_brings_the_table_back_and_leaves_every_other_table_as_it_is() {
    let (dir, at_backup) = with_backup();
    let db = dir.path().join("memory.db");
    change_live(&db);
    let live = patterns(&db);
    assert_ne!(live, at_backup);
    let before = table_hashes(&db);

    let out = ok_in(dir.path(), &["restore", "--table=patterns"]);
    assert!(out.contains("restored table patterns"), "{out}");
    assert_eq!(patterns(&db), at_backup);
    let after = table_hashes(&db);
    for (table, hash) in &before {
        if table != "patterns" {
            assert_eq!(&after[table], hash, "{table} changed");
        }
    }
    // The rows it replaced are in a complete archive, every one of them.
    let archives = list_archives(&dir.path().join("archive/memory")).expect("list");
    assert_eq!(archives.len(), 1, "{archives:?}");
    let a = read_archive(&archives[0]).expect("complete");
    assert_eq!(a.header.table, "patterns");
    assert_eq!(a.rows.len(), live.len());
    // No decompressed backup is left beside the database.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let conn = Connection::open(&db).expect("open");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(ok, "ok");
}

#[test]
fn merge_inserts_only_the_rows_whose_key_is_missing() {
    let (dir, at_backup) = with_backup();
    let db = dir.path().join("memory.db");
    change_live(&db);
    let live = patterns(&db);
    let before = table_hashes(&db);

    ok_in(dir.path(), &["restore", "--table=patterns", "--mode=merge"]);
    let mut want = live.clone();
    for (id, row) in &at_backup {
        want.entry(id.clone()).or_insert_with(|| row.clone());
    }
    assert_eq!(patterns(&db), want);
    assert!(want.len() > live.len());
    let after = table_hashes(&db);
    for (table, hash) in &before {
        if table != "patterns" {
            assert_eq!(&after[table], hash, "{table} changed");
        }
    }
}

#[test]
fn a_restore_that_would_break_a_foreign_key_changes_nothing() {
    let (dir, _) = with_backup();
    let db = dir.path().join("memory.db");
    change_live(&db);
    // A pattern made after the backup, with its embedding: replacing the
    // table with the backup's would leave the embedding pointing nowhere.
    let conn = Connection::open(&db).expect("open");
    conn.execute_batch(
        "INSERT INTO pattern_embeddings VALUES ('new-1', x'00ff', 1, datetime('now'));",
    )
    .expect("embedding");
    drop(conn);
    let before = table_hashes(&db);

    let out = caretaker_in(dir.path(), &["restore", "--table=patterns"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("foreign key") && stderr.contains("pattern_embeddings"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(table_hashes(&db), before);
    assert!(list_archives(&dir.path().join("archive/memory"))
        .expect("list")
        .is_empty());
    // Merge keeps the new pattern, so it breaks nothing.
    ok_in(dir.path(), &["restore", "--table=patterns", "--mode=merge"]);
}

#[test]
fn bad_requests_are_refused_with_a_message_and_change_nothing() {
    let (dir, _) = with_backup();
    let db = dir.path().join("memory.db");
    let conn = Connection::open(&db).expect("open");
    conn.execute_batch("ALTER TABLE memory_entries ADD COLUMN tag TEXT;")
        .expect("drift");
    drop(conn);
    let before = table_hashes(&db);
    for (args, says) in [
        (vec!["restore", "--table=nowhere"], "no table nowhere"),
        (
            vec!["restore", "--table=memory_entries"],
            "migrate one of them first",
        ),
        (
            vec!["restore", "--table=sqlite_master"],
            "SQLite's own table",
        ),
        (vec!["restore", "--mode=merge"], "--table"),
        (vec!["restore", "--table=patterns", "--force"], "--force"),
    ] {
        let out = caretaker_in(dir.path(), &args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(table_hashes(&db), before, "{args:?}");
    }
}

#[test]
fn it_waits_for_the_maintenance_lock_and_refuses_while_another_action_holds_it() {
    let (dir, _) = with_backup();
    let db = dir.path().join("memory.db");
    change_live(&db);
    let before = table_hashes(&db);
    let held = caretaker::responder::lock::lock_file(&db, std::time::Duration::ZERO).expect("lock");
    let out = caretaker_in(dir.path(), &["restore", "--table=patterns"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("maintenance lock"), "{stderr}");
    assert_eq!(table_hashes(&db), before);
    drop(held);
    ok_in(dir.path(), &["restore", "--table=patterns"]);
}

/// The `restore_table` or `restore` jobs and audit events of the state
/// database, oldest first: (job id, status, error, outcome) and (job id,
/// reason, detail).
type Jobs = Vec<(i64, String, Option<String>, Option<serde_json::Value>)>;
fn recorded(dir: &Path, action: &str) -> (Jobs, Vec<(i64, String, String)>) {
    let conn = Connection::open(dir.join("state.db")).expect("state");
    let jobs = conn
        .prepare("SELECT id, status, error, outcome FROM jobs WHERE action = ?1 ORDER BY id")
        .expect("jobs")
        .query_map([action], |r| {
            let outcome: Option<String> = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                outcome.map(|o| serde_json::from_str(&o).expect("outcome json")),
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let audit = conn
        .prepare("SELECT job_id, reason, detail FROM audit WHERE action = ?1 ORDER BY id")
        .expect("audit")
        .query_map([action], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    (jobs, audit)
}

#[test]
fn table_restores_succeeded_and_refused_are_jobs_in_the_history_and_the_audit() {
    let (dir, _) = with_backup();
    let db = dir.path().join("memory.db");
    change_live(&db);
    let live = patterns(&db).len() as f64;
    let out = ok_in(dir.path(), &["restore", "--table=patterns"]);
    let restored = patterns(&db).len() as f64;
    // A pattern with an embedding that the backup's table does not have.
    Connection::open(&db)
        .expect("open")
        .execute_batch(
            "INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at)
               VALUES ('late', 'x', 'y', 0.5, 1, datetime('now'));
             INSERT INTO pattern_embeddings VALUES ('late', x'00', 1, datetime('now'));",
        )
        .expect("late pattern");
    let refused = caretaker_in(dir.path(), &["restore", "--table=patterns"]);
    assert!(!refused.status.success());

    let (jobs, audit) = recorded(dir.path(), "restore_table");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let (ok_id, status, error, outcome) = &jobs[0];
    assert_eq!((status.as_str(), error), ("succeeded", &None));
    assert!(out.contains(&format!("job {ok_id}:")), "{out}");
    let figures = &outcome.as_ref().expect("outcome")["figures"];
    assert_eq!(figures["rows_archived"], live, "{figures}");
    assert_eq!(figures["rows_deleted"], live, "{figures}");
    assert_eq!(figures["rows_inserted"], restored, "{figures}");
    let summary = outcome.as_ref().expect("outcome")["summary"]
        .as_str()
        .expect("summary");
    let backups = std::fs::read_dir(dir.path().join("backups"))
        .expect("backups")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".zst"))
        .expect("a backup");
    assert!(
        summary.contains("patterns") && summary.contains("replace") && summary.contains(&backups),
        "{summary}"
    );
    let (no_id, status, error, outcome) = &jobs[1];
    assert_eq!(status, "failed");
    assert!(outcome.is_none(), "{outcome:?}");
    let error = error.as_deref().expect("reason");
    for part in [
        "table patterns",
        "mode replace",
        "foreign key",
        "pattern_embeddings",
    ] {
        assert!(error.contains(part), "{part:?} not in {error}");
    }
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(&format!("job {no_id}:")), "{stderr}");
    assert_eq!(
        audit,
        vec![
            (*ok_id, "succeeded".to_string(), summary.to_string()),
            (*no_id, "failed".to_string(), error.to_string()),
        ]
    );
    // Putting the replaced rows back is a job too.
    let archives = list_archives(&dir.path().join("archive/memory")).expect("list");
    let archive = archives[0].display().to_string();
    ok_in(dir.path(), &["restore-archive", &archive]);
    let (undone, undone_audit) = recorded(dir.path(), "restore_archive");
    assert_eq!(undone.len(), 1, "{undone:?}");
    assert_eq!(undone[0].1, "succeeded");
    let f = &undone[0].3.as_ref().expect("outcome")["figures"];
    let rows = f["rows_inserted"].as_f64().expect("inserted")
        + f["rows_already_present"].as_f64().expect("present")
        + f["rows_reset"].as_f64().expect("reset");
    assert_eq!(rows, live, "{f}");
    assert_eq!(undone_audit.len(), 1, "{undone_audit:?}");
    let history = ok_in(dir.path(), &["history", "--action=restore_table"]);
    let lines: Vec<&str> = history.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{history}");
    // Newest first.
    assert!(
        lines[0].contains("failed") && lines[0].contains("foreign key"),
        "{history}"
    );
    assert!(
        lines[1].contains("succeeded") && lines[1].contains("rows archived"),
        "{history}"
    );
}

#[test]
fn a_whole_database_restore_is_a_job_too_and_so_is_one_that_finds_no_backup() {
    let (dir, _) = with_backup();
    let missing = caretaker_in(dir.path(), &["restore", "--backup=nowhere.db.zst"]);
    assert!(!missing.status.success());
    ok_in(dir.path(), &["restore"]);
    let (jobs, audit) = recorded(dir.path(), "restore");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0].1, "failed");
    assert!(
        jobs[0]
            .2
            .as_deref()
            .is_some_and(|e| e.contains("nowhere.db.zst")),
        "{jobs:?}"
    );
    assert_eq!(jobs[1].1, "succeeded");
    let size = std::fs::metadata(dir.path().join("memory.db"))
        .expect("db")
        .len();
    let figures = &jobs[1].3.as_ref().expect("outcome")["figures"];
    assert_eq!(figures["bytes"], size as f64, "{figures}");
    let reasons: Vec<&str> = audit.iter().map(|a| a.1.as_str()).collect();
    assert_eq!(reasons, ["failed", "succeeded"]);
    let history = ok_in(dir.path(), &["history", "--action=restore"]);
    assert_eq!(history.lines().count(), 3, "{history}");
}
