//! `caretaker migrate`: seed 001's "Running Migrations Safely" and "Rollback
//! Migration" as one command, on real SQLite files and the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::common::{self, Caretaker};

const BIN: &str = env!("CARGO_BIN_EXE_caretaker");

/// A folder with `memory.db` (seed schema, WAL mode, one pattern), its
/// configuration and a `migrations` folder holding `files`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(files: &[(&str, &str)]) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = common::create_db(&dir.path().join("memory.db"));
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at)
             VALUES ('p1', 'code_review', '{}', 0.5, 1, datetime('now'));",
        )
        .expect("fill");
        drop(conn);
        std::fs::write(
            dir.path().join("caretaker.toml"),
            common::one_database_config(""),
        )
        .expect("config");
        let migrations = dir.path().join("migrations");
        std::fs::create_dir(&migrations).expect("migrations folder");
        for (name, sql) in files {
            std::fs::write(migrations.join(name), sql).expect("migration");
        }
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `caretaker migrate` with the config and folder given as full paths.
    fn migrate(&self, extra: &[&str]) -> Output {
        Command::new(BIN)
            .arg("migrate")
            .arg(format!(
                "--config.file={}",
                self.path("caretaker.toml").display()
            ))
            .arg("--database=memory")
            .args(extra)
            .arg(self.path("migrations"))
            .output()
            .expect("caretaker runs")
    }

    fn db(&self) -> Connection {
        Connection::open(self.path("memory.db")).expect("open")
    }

    /// (filename, status) of `migrations_applied`, in id order.
    fn recorded(&self) -> Vec<(String, String)> {
        let conn = self.db();
        let mut stmt = conn
            .prepare("SELECT filename, status FROM migrations_applied ORDER BY id")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    }

    fn backups(&self) -> Vec<String> {
        match std::fs::read_dir(self.path("backups")) {
            Ok(entries) => entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| crate::common::is_backup_data(n))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Files caretaker left beside the database (test copies, journals).
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains("caretaker-migrate"))
            .collect()
    }

    fn history(&self) -> String {
        let out = Command::new(BIN)
            .arg("history")
            .arg(format!(
                "--config.file={}",
                self.path("caretaker.toml").display()
            ))
            .args(["--action", "migrate"])
            .output()
            .expect("history runs");
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The database's bytes: the main file and its WAL, then the main file
    /// after every committed page is checkpointed into it.
    fn bytes(&self) -> (Vec<u8>, Vec<u8>) {
        let main = self.path("memory.db");
        let wal = self.path("memory.db-wal");
        let mut before = std::fs::read(&main).expect("read db");
        before.extend(std::fs::read(&wal).unwrap_or_default());
        let conn = self.db();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        drop(conn);
        (before, std::fs::read(&main).expect("read db"))
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tables(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

/// 001 creates a table that 002 fills: reversed, 002 would fail.
const GOOD: [(&str, &str); 3] = [
    (
        "002_fill_notes.sql",
        "INSERT INTO notes (id, body) VALUES (1, 'first');",
    ),
    (
        "001_add_notes.sql",
        "-- Migration: a notes table\nBEGIN TRANSACTION;\nCREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\nSELECT COUNT(*) FROM notes;\nCOMMIT;\n",
    ),
    ("001_add_notes.down.sql", "DROP TABLE notes;"),
];

#[test]
fn pending_files_are_applied_in_name_order_after_a_verified_backup_and_recorded() {
    let s = Setup::new(&GOOD);
    let out = s.migrate(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let recorded = s.recorded();
    assert_eq!(
        recorded,
        vec![
            ("001_add_notes.sql".to_string(), "success".to_string()),
            ("002_fill_notes.sql".to_string(), "success".to_string()),
        ]
    );
    let body: String = s
        .db()
        .query_row("SELECT body FROM notes WHERE id = 1", [], |r| r.get(0))
        .expect("row");
    assert_eq!(body, "first");
    let backups = s.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    // The backup is the database before the migration, and verifies.
    let backup = s.path("backups").join(&backups[0]);
    assert!(
        stdout(&out).contains(&backup.display().to_string()),
        "{}",
        stdout(&out)
    );
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
    let history = s.history();
    assert!(
        history.contains("migrate") && history.contains("succeeded"),
        "{history}"
    );

    // Nothing is pending any more: no new backup, nothing recorded twice.
    let again = s.migrate(&[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("no pending migrations"),
        "{}",
        stdout(&again)
    );
    assert_eq!(s.recorded(), recorded);
    assert_eq!(s.backups().len(), 1);
}

/// Runs a migration whose second file fails and checks that the live
/// database is unchanged, byte for byte, and nothing is recorded.
fn second_file_fails(second: &str, expected: &[&str]) {
    let s = Setup::new(&[("001_add_notes.sql", GOOD[1].1), ("002_broken.sql", second)]);
    let before = s.bytes();
    let out = s.migrate(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("002_broken.sql"), "{err}");
    for part in expected {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    assert_eq!(s.bytes(), before, "the live database changed");
    assert!(s.recorded().is_empty(), "{:?}", s.recorded());
    assert!(!tables(&s.db()).contains(&"notes".to_string()));
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
    let history = s.history();
    assert!(history.contains("failed"), "{history}");
}

#[test]
fn a_bad_statement_in_the_second_file_changes_nothing_and_is_named() {
    second_file_fails(
        "CREATE TABLE more (a TEXT);\n  INSRT INTO more VALUES ('x');  \nSELECT 1;",
        &["INSRT INTO more VALUES ('x');"],
    );
}

#[test]
fn a_foreign_key_violation_found_on_the_copy_changes_nothing() {
    second_file_fails(
        "INSERT INTO pattern_embeddings (pattern_id, embedding, dimension, created_at)
         VALUES ('no-such-pattern', x'00', 1, datetime('now'));",
        &["foreign_key_check", "pattern_embeddings", "the test copy"],
    );
}

#[tokio::test]
async fn a_rollback_marks_the_migration_rolled_back_and_metrics_count_successes_only() {
    let s = Setup::new(&GOOD);
    // 002 depends on 001's table; roll back a self-contained pair instead.
    std::fs::remove_file(s.path("migrations/002_fill_notes.sql")).expect("remove");
    std::fs::write(
        s.path("migrations/002_index.sql"),
        "CREATE INDEX idx_patterns_type_confidence ON patterns(type, confidence DESC);",
    )
    .expect("write");
    assert!(s.migrate(&[]).status.success());
    let out = s.migrate(&["--rollback", "001_add_notes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        s.recorded(),
        vec![
            ("001_add_notes.sql".to_string(), "rolled_back".to_string()),
            ("002_index.sql".to_string(), "success".to_string()),
        ]
    );
    assert!(!tables(&s.db()).contains(&"notes".to_string()));
    assert_eq!(s.backups().len(), 2, "a backup before the rollback too");

    // A migration not applied has nothing to roll back.
    let refused = s.migrate(&["--rollback", "001_add_notes"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("not applied"),
        "{}",
        stderr(&refused)
    );

    let config = std::fs::read_to_string(s.path("caretaker.toml")).expect("config");
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["memory.db", "memory.db-wal", "memory.db-shm"] {
        if s.path(name).exists() {
            std::fs::copy(s.path(name), dir.path().join(name)).expect("copy");
        }
    }
    let caretaker = Caretaker::start(dir, &config).await;
    let samples = caretaker.metrics().await;
    assert_eq!(
        common::value(&samples, "caretaker_migrations_applied", &[]),
        Some(1.0)
    );
    caretaker.stop().await;

    // Rolled back, the migration is pending again, and applies again.
    let out = s.migrate(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("001_add_notes.sql"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        s.recorded()[0],
        ("001_add_notes.sql".into(), "success".into())
    );
}

#[test]
fn a_dry_run_lists_the_pending_files_checks_them_and_changes_nothing() {
    let s = Setup::new(&GOOD);
    let before = s.bytes();
    let out = s.migrate(&["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: Vec<String> = stdout(&out)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("would run "))
        .map(String::from)
        .collect();
    assert_eq!(listed, ["001_add_notes.sql", "002_fill_notes.sql"]);
    assert_eq!(s.bytes(), before);
    assert!(s.recorded().is_empty());
    assert!(s.backups().is_empty(), "{:?}", s.backups());
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());

    // A file that fails on the copy fails the dry run too.
    std::fs::write(s.path("migrations/003_bad.sql"), "DROP TABLE nothing_here;").expect("write");
    let out = s.migrate(&["--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("003_bad.sql"), "{}", stderr(&out));
    assert_eq!(s.bytes(), before);
}

#[test]
fn a_held_write_lock_ends_in_a_bounded_wait_that_names_the_timeout() {
    let s = Setup::new(&GOOD);
    let before = s.bytes();
    let holder = s.db();
    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let started = Instant::now();
    let out = s.migrate(&["--busy-timeout=700ms"]);
    let waited = started.elapsed();
    holder.execute_batch("ROLLBACK").expect("release");
    drop(holder);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("busy timeout (700ms)"), "{err}");
    assert!(err.contains("001_add_notes.sql"), "{err}");
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
    assert_eq!(s.bytes(), before);
    assert!(s.recorded().is_empty());
}

#[test]
fn it_runs_from_the_configuration_folder_with_bare_names() {
    let s = Setup::new(&GOOD);
    // What a run killed mid-way leaves (no process has this number).
    let stale = s.path(".memory.db.caretaker-migrate-4194305.tmp");
    std::fs::write(&stale, b"old copy").expect("stale copy");
    std::fs::write(
        s.path(".memory.db.caretaker-migrate-4194305.tmp-journal"),
        b"j",
    )
    .expect("stale journal");
    let out = Command::new(BIN)
        .current_dir(s.dir.path())
        .args(["migrate", "--config.file=caretaker.toml", "migrations"])
        .output()
        .expect("caretaker runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.recorded().len(), 2);
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
    let missing = Command::new(BIN)
        .current_dir(s.dir.path())
        .args(["migrate", "--config.file=caretaker.toml", "no-such-folder"])
        .output()
        .expect("caretaker runs");
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no-such-folder"),
        "{}",
        stderr(&missing)
    );
}

/// The seed's own way to drop a column: rebuild `patterns` under a new name,
/// drop the old table, rename. With foreign keys on (the bundled SQLite's
/// default), dropping `patterns` would cascade-delete every embedding.
#[test]
fn a_table_rebuilt_in_steps_keeps_the_rows_that_reference_it() {
    let s = Setup::new(&[(
        "001_rebuild_patterns.sql",
        "BEGIN TRANSACTION;
         CREATE TABLE patterns_new (
           id TEXT PRIMARY KEY, type TEXT NOT NULL, pattern_data TEXT NOT NULL,
           confidence REAL NOT NULL DEFAULT 0.5, usage_count INTEGER NOT NULL DEFAULT 0,
           created_at TEXT NOT NULL, last_used TEXT);
         INSERT INTO patterns_new
           SELECT id, type, pattern_data, confidence, usage_count, created_at, last_used FROM patterns;
         DROP TABLE patterns;
         ALTER TABLE patterns_new RENAME TO patterns;
         COMMIT;",
    )]);
    s.db()
        .execute(
            "INSERT INTO pattern_embeddings (pattern_id, embedding, dimension, created_at)
             VALUES ('p1', x'00', 1, datetime('now'))",
            [],
        )
        .expect("embedding");
    let out = s.migrate(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let embeddings: i64 = s
        .db()
        .query_row("SELECT COUNT(*) FROM pattern_embeddings", [], |r| r.get(0))
        .expect("count");
    assert_eq!(embeddings, 1);
    assert_eq!(s.recorded().len(), 1);
}

#[test]
fn another_maintenance_job_on_the_database_keeps_the_migration_out() {
    let s = Setup::new(&GOOD);
    let lock = std::fs::File::create(s.path("memory.db.caretaker-lock")).expect("lock file");
    lock.lock().expect("hold the maintenance lock");
    let before = s.bytes();
    let out = s.migrate(&[]);
    drop(lock);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("maintenance lock"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.bytes(), before);
    assert!(s.backups().is_empty());
}

/// Violations the application already had are not the migration's: only
/// the ones a file adds refuse it.
#[test]
fn foreign_key_violations_already_there_do_not_block_a_migration() {
    let s = Setup::new(&GOOD);
    let conn = s.db();
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         INSERT INTO pattern_embeddings (pattern_id, embedding, dimension, created_at)
         VALUES ('gone', x'00', 1, datetime('now'));",
    )
    .expect("orphan");
    drop(conn);
    let out = s.migrate(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.recorded().len(), 2);
}
