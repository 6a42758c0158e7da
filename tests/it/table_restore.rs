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
    let held =
        caretaker::responder::executor::lock_file(&db, std::time::Duration::ZERO).expect("lock");
    let out = caretaker_in(dir.path(), &["restore", "--table=patterns"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("maintenance lock"), "{stderr}");
    assert_eq!(table_hashes(&db), before);
    drop(held);
    ok_in(dir.path(), &["restore", "--table=patterns"]);
}
