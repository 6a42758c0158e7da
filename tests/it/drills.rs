//! Manifests beside local backups, and restore drills that compare a
//! restored copy with them: on real SQLite files of several shapes, with
//! the live database checked byte for byte afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use caretaker::actions::backup::Backup;
use caretaker::backups::manifest::{manifest_of, Manifest};
use caretaker::backups::sidecar::sha256_file;
use caretaker::config::{Compression, DatabaseConfig};
use rusqlite::Connection;

use crate::backup_actions::{add_patterns, backup_dir, database, run, unpack, wal_db};
use crate::common::create_db;

/// The database shapes a manifest must describe right.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// The seed schema with small rows and applied migrations.
    SmallRows,
    /// Rows of 20 KB, spilling into overflow pages.
    LargeRows,
    /// NULLs, odd text, and a table whose name needs quoting.
    OddNames,
    /// Not the seed schema at all, and no `migrations_applied`.
    Drifted,
}

const SHAPES: [Shape; 4] = [
    Shape::SmallRows,
    Shape::LargeRows,
    Shape::OddNames,
    Shape::Drifted,
];

/// Builds `shape` at `dir/memory.db`; returns its configuration.
fn make(dir: &Path, shape: Shape) -> DatabaseConfig {
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

/// Rows per table as counted here, on the live file.
fn counts(path: &Path) -> BTreeMap<String, u64> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .expect("tables");
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("names");
    names
        .into_iter()
        .map(|t| {
            let sql = format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\""));
            let n: i64 = conn.query_row(&sql, [], |r| r.get(0)).expect("count");
            (t, n as u64)
        })
        .collect()
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

#[test]
fn every_local_backup_has_a_manifest_that_describes_what_it_holds() {
    for shape in SHAPES {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = make(dir.path(), shape);
        let backup = take_backup(&db, SystemTime::now());
        let m = read_manifest(&backup);
        let unpacked = unpack(&backup, dir.path());
        assert_eq!(m.database, "memory", "{shape:?}");
        assert_eq!(
            m.backup,
            backup.file_name().expect("name").to_string_lossy(),
            "{shape:?}"
        );
        assert_eq!(
            m.sqlite_sha256,
            sha256_file(&unpacked).expect("hash"),
            "{shape:?}: the checksum of the SQLite file the backup holds"
        );
        let size = std::fs::metadata(&unpacked).expect("meta").len();
        assert_eq!(m.page_size * m.page_count, size, "{shape:?}");
        assert_eq!(m.row_counts, counts(&db.path), "{shape:?}");
        let migrations: &[&str] = match shape {
            Shape::SmallRows => &["001_init.sql", "003_index.sql"],
            _ => &[],
        };
        assert_eq!(m.migrations_applied, migrations, "{shape:?}");
        // The manifest is part of its backup, never one itself.
        let set = caretaker::backups::BackupSet::new(&backup_dir(&db), "memory");
        let listed = set
            .list(std::time::Instant::now() + std::time::Duration::from_secs(60))
            .expect("list");
        assert_eq!(listed.len(), 1, "{shape:?}: {listed:?}");
    }
}

#[test]
fn schema_hashes_differ_exactly_when_the_schema_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = make(dir.path(), Shape::Drifted);
    let t0 = SystemTime::now();
    let first = read_manifest(&take_backup(&db, t0));
    // More rows: same schema.
    Connection::open(&db.path)
        .and_then(|c| c.execute("INSERT INTO notes (body) VALUES ('one more')", []))
        .expect("insert");
    let second = read_manifest(&take_backup(&db, t0 + std::time::Duration::from_secs(1)));
    assert_eq!(first.schema_hash, second.schema_hash);
    assert_eq!(second.row_counts["notes"], first.row_counts["notes"] + 1);
    // A new column: another schema.
    Connection::open(&db.path)
        .and_then(|c| c.execute_batch("ALTER TABLE notes ADD COLUMN tag TEXT"))
        .expect("alter");
    let third = read_manifest(&take_backup(&db, t0 + std::time::Duration::from_secs(2)));
    assert_ne!(second.schema_hash, third.schema_hash);
}

#[test]
fn retention_deletes_a_backups_manifest_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = make(dir.path(), Shape::Drifted);
    let day = std::time::Duration::from_secs(86_400);
    let long_ago = SystemTime::now() - 400 * day;
    let old = [take_backup(&db, long_ago), take_backup(&db, long_ago + day)];
    assert!(old.iter().all(|b| manifest_of(b).exists()));
    // Past both retentions: the next backup's retention removes them.
    let newest = take_backup(&db, SystemTime::now());
    for path in &old {
        assert!(!path.exists(), "{}", path.display());
        assert!(!manifest_of(path).exists(), "{}", path.display());
    }
    let mut left: Vec<String> = std::fs::read_dir(backup_dir(&db))
        .expect("folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let name = newest.file_name().expect("name").to_string_lossy();
    assert_eq!(
        left,
        [
            name.to_string(),
            format!("{name}.manifest.json"),
            format!("{name}.sha256")
        ]
    );
}
