//! Manifests beside local backups, and restore drills that compare a
//! restored copy with them: on real SQLite files of several shapes, with
//! the live database checked byte for byte afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use caretaker::actions::backup::Backup;
use caretaker::actions::restore_drill::RestoreDrill;
use caretaker::actions::ActionError;
use caretaker::backups::drill::{recorded, DrillSource};
use caretaker::backups::manifest::{manifest_of, Manifest};
use caretaker::backups::sidecar::sidecar_of;
use caretaker::backups::temporaries::remove_stale_temporaries;
use caretaker::config::{Compression, DatabaseConfig};
use rusqlite::Connection;

mod manifests;

use crate::backup_actions::{add_patterns, backup_dir, database, run, unpack, wal_db};
use crate::common::{create_db, value};

/// The database shapes a manifest must describe right.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// The seed schema with small rows and applied migrations.
    SmallRows,
    /// Rows of 20 KB, spilling into overflow pages.
    LargeRows,
    /// NULLs, odd text, and a table whose name needs quoting.
    OddNames,
    /// Not the seed schema at all, and no `migrations_applied`.
    Drifted,
}

pub const SHAPES: [Shape; 4] = [
    Shape::SmallRows,
    Shape::LargeRows,
    Shape::OddNames,
    Shape::Drifted,
];

/// Builds `shape` at `dir/memory.db`; returns its configuration.
pub fn make(dir: &Path, shape: Shape) -> DatabaseConfig {
    let db = database(dir, Compression::Zstd);
    match shape {
        Shape::SmallRows => {
            let conn = wal_db(&db.path, 3_000);
            conn.execute_batch(
                "INSERT INTO migrations_applied (filename, applied_at, status) VALUES
                   ('001_init.sql', '2026-01-01', 'success'),
                   ('002_broken.sql', '2026-01-02', 'rolled_back'),
                   ('003_index.sql', '2026-01-03', 'success');",
            )
            .expect("migrations");
        }
        Shape::LargeRows => {
            let conn = create_db(&db.path);
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 199)
                 INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at)
                 SELECT printf('big%04d', i), 'type' || (i % 3), hex(randomblob(10000)), 0.5, 1, datetime('now') FROM n",
                [],
            )
            .expect("large rows");
        }
        Shape::OddNames => {
            let conn = create_db(&db.path);
            add_patterns(&conn, 0, 50);
            conn.execute_batch(
                "CREATE TABLE \"odd \"\"name\"\" with spaces\" (k TEXT, v BLOB);
                 INSERT INTO \"odd \"\"name\"\" with spaces\" VALUES
                   (NULL, NULL), ('line\nbreak', x'00ff'), ('ünïcødé ✓', ''), ('', NULL);
                 INSERT INTO memory_entries (namespace, key, value, ttl, created_at, expires_at)
                   VALUES ('', 'k''\"', '', NULL, '', NULL);",
            )
            .expect("odd table");
        }
        Shape::Drifted => {
            let conn = Connection::open(&db.path).expect("open");
            conn.execute_batch(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
                 CREATE INDEX notes_body ON notes(body);
                 WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
                 INSERT INTO notes (body) SELECT printf('note %d', i) FROM n;",
            )
            .expect("drifted schema");
        }
    }
    db
}

/// Takes a backup of `db` with the `backup` action; returns its path.
pub fn take_backup(db: &DatabaseConfig, now: SystemTime) -> PathBuf {
    let outcome = run(&Backup, db, now).expect("backup");
    let dir = backup_dir(db);
    let newest = caretaker::backups::BackupSet::new(&dir, &db.name)
        .list(std::time::Instant::now() + std::time::Duration::from_secs(60))
        .expect("list");
    let path = newest.first().expect("a backup").path.clone();
    assert!(outcome.summary.contains(&path.display().to_string()));
    path
}

pub fn read_manifest(backup: &Path) -> Manifest {
    let text = std::fs::read(manifest_of(backup)).expect("a manifest beside the backup");
    serde_json::from_slice(&text).expect("manifest json")
}

/// The live database's files (main, `-wal`, `-shm`) and their bytes.
fn live_files(db: &DatabaseConfig) -> BTreeMap<String, Vec<u8>> {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| {
            let path = PathBuf::from(format!("{}{s}", db.path.display()));
            Some((s.to_string(), std::fs::read(path).ok()?))
        })
        .collect()
}

/// The names in the backup folder, hidden ones included.
fn folder(db: &DatabaseConfig) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(backup_dir(db))
        .expect("folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_drill_passes_on_good_backups_and_leaves_the_live_database_byte_identical() {
    for shape in SHAPES {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = make(dir.path(), shape);
        take_backup(&db, SystemTime::now());
        let before = live_files(&db);
        let modified = std::fs::metadata(&db.path).and_then(|m| m.modified());
        let files = folder(&db);
        let outcome =
            run(&RestoreDrill, &db, SystemTime::now()).unwrap_or_else(|e| panic!("{shape:?}: {e}"));
        println!("{shape:?}: {}", outcome.summary);
        assert_eq!(outcome.figures["local_ok"], 1.0, "{shape:?}");
        assert!(outcome.figures["local_seconds"] > 0.0, "{shape:?}");
        assert!(!outcome.figures.contains_key("offsite_ok"), "{shape:?}");
        assert_eq!(live_files(&db), before, "{shape:?}: the live database");
        assert_eq!(
            std::fs::metadata(&db.path).and_then(|m| m.modified()).ok(),
            modified.ok(),
            "{shape:?}"
        );
        // The scratch copy is gone; only the record of the drill is new.
        let mut expected = files;
        expected.push(".memory.restore-drills.json".to_string());
        expected.sort();
        assert_eq!(folder(&db), expected, "{shape:?}");
        let record = recorded(&backup_dir(&db), "memory");
        assert!(record[&DrillSource::Local].success, "{shape:?}");
    }
}

/// Replaces `backup` by a copy of what it holds after `sql`, recompressed
/// with the `zstd` command and given a matching sidecar (`sha256sum`), so
/// only the manifest can tell.
fn alter(backup: &Path, scratch: &Path, sql: &str) {
    let unpacked = unpack(backup, scratch);
    Connection::open(&unpacked)
        .and_then(|c| c.execute_batch(sql))
        .expect("alter the copy");
    let status = Command::new("zstd")
        .args(["-q", "-f"])
        .arg(&unpacked)
        .arg("-o")
        .arg(backup)
        .status()
        .expect("zstd");
    assert!(status.success());
    let name = backup.file_name().expect("name").to_string_lossy();
    let out = Command::new("sha256sum")
        .arg(&*name)
        .current_dir(backup.parent().expect("folder"))
        .output()
        .expect("sha256sum");
    std::fs::write(sidecar_of(backup), out.stdout).expect("sidecar");
}

#[test]
fn a_backup_whose_rows_differ_from_its_manifest_fails_the_drill_naming_the_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = make(dir.path(), Shape::SmallRows);
    let backup = take_backup(&db, SystemTime::now());
    let want = read_manifest(&backup).row_counts["patterns"];
    alter(
        &backup,
        dir.path(),
        "DELETE FROM patterns WHERE rowid % 10 = 0",
    );
    let set = caretaker::backups::BackupSet::new(&backup_dir(&db), "memory");
    assert!(
        set.checksum_matches(&backup).expect("sidecar"),
        "still verifies"
    );
    let before = live_files(&db);

    let err = run(&RestoreDrill, &db, SystemTime::now()).expect_err("the drill fails");
    println!("{err}");
    assert!(matches!(err, ActionError::Failed(_)), "{err:?}");
    let text = err.to_string();
    let got = want - want.div_ceil(10);
    assert!(
        text.contains(&format!(
            "table patterns: {got} rows, the manifest says {want}"
        )),
        "{text}"
    );
    assert!(text.contains("local failed"), "{text}");
    assert!(
        !text.contains("pattern_embeddings"),
        "only the table that differs: {text}"
    );
    assert_eq!(live_files(&db), before, "the live database");
    assert!(!recorded(&backup_dir(&db), "memory")[&DrillSource::Local].success);
    assert!(
        !folder(&db).iter().any(|n| n.starts_with(".restore-drill.")),
        "no scratch folder left"
    );
}

#[test]
fn a_damaged_backup_or_one_without_a_manifest_fails_the_drill_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = make(dir.path(), Shape::LargeRows);
    let backup = take_backup(&db, SystemTime::now());
    // A schema change the row counts would not show.
    alter(&backup, dir.path(), "CREATE TABLE extra (x)");
    let err = run(&RestoreDrill, &db, SystemTime::now()).expect_err("schema");
    assert!(err.to_string().contains("schema"), "{err}");
    assert!(
        err.to_string()
            .contains("table extra is not in the manifest"),
        "{err}"
    );
    std::fs::remove_file(manifest_of(&backup)).expect("remove manifest");
    let err = run(&RestoreDrill, &db, SystemTime::now()).expect_err("no manifest");
    assert!(
        err.to_string().contains("has no readable manifest"),
        "{err}"
    );
}

#[test]
fn a_drills_scratch_folder_left_by_a_crash_is_removed_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = make(dir.path(), Shape::Drifted);
    take_backup(&db, SystemTime::now());
    // The scratch folder of a process that is gone (a pid above Linux's
    // largest possible pid_max).
    let stale = backup_dir(&db).join(".restore-drill.4194305-0.tmp");
    std::fs::create_dir(&stale).expect("mkdir");
    std::fs::write(stale.join("memory.db"), b"half").expect("file");
    remove_stale_temporaries(&backup_dir(&db)).expect("cleanup");
    assert!(!stale.exists());
    assert_eq!(folder(&db).len(), 3, "{:?}", folder(&db));
}

/// `caretaker run ACTION` in `dir`: whether it succeeded, and its output.
fn run_cli(dir: &Path, action: &str) -> (bool, String) {
    let out = crate::common::caretaker()
        .args(["run", action])
        .arg(format!(
            "--config.file={}",
            dir.join("caretaker.toml").display()
        ))
        .output()
        .expect("caretaker run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_run_from_a_shell_reach_metrics_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    make(dir.path(), Shape::OddNames);
    let config = format!(
        "[web]\ntoken_file = \"token\"\n{}",
        crate::common::one_database_config("")
    );
    crate::responder::write_token(dir.path());
    std::fs::write(dir.path().join("caretaker.toml"), &config).expect("config");
    let (ok, out) = run_cli(dir.path(), "backup");
    assert!(ok, "{out}");
    let (ok, out) = run_cli(dir.path(), "restore_drill");
    assert!(ok, "{out}");
    let before = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();

    // A daemon started afterwards (as after a restart) reports it.
    let ct = crate::common::Caretaker::start(dir, &config).await;
    let local = [("database", "memory"), ("source", "local")];
    let m = ct
        .wait_for(
            "the recorded drill",
            std::time::Duration::from_secs(10),
            |m| value(m, "caretaker_restore_drill_success", &local).is_some(),
        )
        .await;
    assert_eq!(
        value(&m, "caretaker_restore_drill_success", &local),
        Some(1.0)
    );
    let at = value(&m, "caretaker_restore_drill_timestamp_seconds", &local).expect("time");
    assert!(at <= before && at > before - 60.0, "{at} {before}");
    assert!(value(&m, "caretaker_restore_drill_duration_seconds", &local).expect("took") > 0.0);
    let offsite = [("database", "memory"), ("source", "offsite")];
    assert_eq!(value(&m, "caretaker_restore_drill_success", &offsite), None);

    // A drill that fails, run through the API, shows within the folder watch.
    let backup = caretaker::backups::BackupSet::new(&ct.dir.path().join("backups"), "memory")
        .list(std::time::Instant::now() + std::time::Duration::from_secs(60))
        .expect("list")
        .remove(0)
        .path;
    alter(
        &backup,
        ct.dir.path(),
        "DELETE FROM \"odd \"\"name\"\" with spaces\"",
    );
    let answer = ct
        .client
        .post(format!(
            "{}/api/v1/actions/restore_drill?wait=true",
            ct.base
        ))
        .bearer_auth(crate::responder::TOKEN)
        .send()
        .await
        .expect("POST");
    println!("{}", answer.text().await.unwrap_or_default());
    ct.wait_for(
        "the failed drill",
        std::time::Duration::from_secs(10),
        |m| value(m, "caretaker_restore_drill_success", &local) == Some(0.0),
    )
    .await;
    ct.stop().await;
}
