//! Manifests beside local backups: what each backup holds, for every
//! database shape, deleted with its backup.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use caretaker::backups::manifest::manifest_of;
use caretaker::backups::sidecar::sha256_file;
use caretaker::backups::BackupSet;
use rusqlite::Connection;

use super::{make, read_manifest, take_backup, Shape, SHAPES};
use crate::backup_actions::{backup_dir, unpack};

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
        let set = BackupSet::new(&backup_dir(&db), "memory");
        let listed = set
            .list(Instant::now() + Duration::from_secs(60))
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
    let second = read_manifest(&take_backup(&db, t0 + Duration::from_secs(1)));
    assert_eq!(first.schema_hash, second.schema_hash);
    assert_eq!(second.row_counts["notes"], first.row_counts["notes"] + 1);
    // A new column: another schema.
    Connection::open(&db.path)
        .and_then(|c| c.execute_batch("ALTER TABLE notes ADD COLUMN tag TEXT"))
        .expect("alter");
    let third = read_manifest(&take_backup(&db, t0 + Duration::from_secs(2)));
    assert_ne!(second.schema_hash, third.schema_hash);
}

#[test]
fn retention_deletes_a_backups_manifest_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = make(dir.path(), Shape::Drifted);
    let day = Duration::from_secs(86_400);
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
