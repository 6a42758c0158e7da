//! Incremental snapshots and `restore --at`, on real SQLite files: marker
//! rows committed at known moments while another connection keeps writing,
//! a delta damaged on disk, a database that grows and shrinks under VACUUM;
//! `processes` runs them as the binary and the daemon do (SIGKILL mid-delta
//! among them).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use caretaker::actions::backup::Backup;
use caretaker::actions::verify_backups::VerifyBackups;
use caretaker::backups::chain::take::{take_snapshot, Taken};
use caretaker::backups::chain::{chains, Chain};
use caretaker::backups::listing::ChecksumCache;
use caretaker::backups::restore::{list_backups, restore, RestoreChoice, RestoreError};
use caretaker::config::{Compression, DatabaseConfig};
use rusqlite::Connection;

use crate::backup_actions::{add_patterns, assert_same, database, flip_byte, rows, run, wal_db};

pub fn snapshot(db: &DatabaseConfig) -> Taken {
    let cfg = db.backup.as_ref().expect("backup config");
    let deadline = Instant::now() + Duration::from_secs(300);
    take_snapshot(
        db,
        cfg,
        SystemTime::now(),
        deadline,
        &mut ChecksumCache::default(),
    )
    .expect("snapshot")
}

/// The newest chain of `db`.
pub fn newest_chain(db: &DatabaseConfig) -> Chain {
    let mut all = chains(list_backups(db).expect("list")).expect("chains");
    all.remove(0)
}

/// When link `sequence` of the newest chain was taken.
pub fn taken(db: &DatabaseConfig, sequence: usize) -> SystemTime {
    newest_chain(db).links[sequence - 1].taken
}

pub fn markers(path: &Path) -> BTreeSet<i64> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn.prepare("SELECT id FROM markers").expect("prepare");
    let ids = stmt.query_map([], |r| r.get(0)).expect("query");
    ids.collect::<rusqlite::Result<_>>().expect("markers")
}

pub fn restore_at(db: &DatabaseConfig, at: SystemTime) -> Result<(), RestoreError> {
    restore(db, RestoreChoice::At(at), false).map(|_| ())
}

pub fn midpoint(a: SystemTime, b: SystemTime) -> SystemTime {
    a + b.duration_since(a).unwrap_or_default() / 2
}

#[test]
fn restores_to_three_moments_hold_exactly_the_markers_committed_by_then() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let conn = wal_db(&db.path, 2_000);
    conn.execute_batch("CREATE TABLE markers (id INTEGER PRIMARY KEY, note TEXT)")
        .expect("markers");
    run(&Backup, &db, SystemTime::now()).expect("full backup");
    // Another connection writes all along: snapshots never wait for it,
    // nor it for them.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, stop) = (db.path.clone(), stop.clone());
        std::thread::spawn(move || {
            let conn = Connection::open(&path).expect("writer");
            conn.busy_timeout(Duration::from_secs(10)).expect("timeout");
            let mut next = 100_000;
            while !stop.load(Ordering::Relaxed) {
                add_patterns(&conn, next, next + 20);
                next += 20;
            }
        })
    };
    let mut committed = Vec::new();
    for i in 0..9i64 {
        conn.execute("INSERT INTO markers VALUES (?1, 'marker')", [i])
            .expect("marker");
        committed.push(i);
        match snapshot(&db) {
            Taken::Delta { sequence, .. } => assert_eq!(sequence, i as u64 + 1),
            other => panic!("no delta: {other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    drop(conn);
    // Snapshot k holds the k markers committed before it; a moment between
    // snapshots k and k+1 restores snapshot k.
    let moments = [
        (midpoint(taken(&db, 2), taken(&db, 3)), 2),
        (taken(&db, 5), 5),
        (taken(&db, 9) + Duration::from_secs(5), 9),
    ];
    for (at, k) in moments {
        restore_at(&db, at).expect("restore");
        let got = markers(&db.path);
        let expected: BTreeSet<i64> = committed[..k].iter().copied().collect();
        assert_eq!(got, expected, "restored to the moment of snapshot {k}");
        let noise = rows(&db.path).len();
        assert!(noise >= 2_000, "{noise} patterns");
    }
    // Before the first delta: the full backup alone, no marker.
    let chain = newest_chain(&db);
    restore_at(&db, midpoint(chain.base.taken, taken(&db, 1))).expect("restore the base");
    assert!(markers(&db.path).is_empty());
}

#[test]
fn an_unchanged_database_moves_the_recovery_point_without_a_delta() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let conn = wal_db(&db.path, 500);
    assert!(matches!(snapshot(&db), Taken::NeedsFullBackup(_)));
    run(&Backup, &db, SystemTime::now()).expect("full backup");
    add_patterns(&conn, 500, 510);
    assert!(matches!(snapshot(&db), Taken::Delta { sequence: 1, .. }));
    let first = newest_chain(&db).newest_point();
    assert_eq!(snapshot(&db), Taken::Unchanged);
    let chain = newest_chain(&db);
    assert_eq!(chain.links.len(), 1);
    assert!(chain.newest_point() > first);
    add_patterns(&conn, 510, 520);
    assert!(matches!(snapshot(&db), Taken::Delta { sequence: 2, .. }));
}

#[test]
fn a_damaged_delta_refuses_later_moments_by_name_and_earlier_ones_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let conn = wal_db(&db.path, 1_000);
    run(&Backup, &db, SystemTime::now()).expect("full backup");
    let mut states = Vec::new();
    for i in 0..3u64 {
        add_patterns(&conn, 1_000 + i * 50, 1_050 + i * 50);
        snapshot(&db);
        states.push(rows(&db.path));
    }
    drop(conn);
    run(&VerifyBackups, &db, SystemTime::now()).expect("a whole chain verifies");
    let chain = newest_chain(&db);
    let second = chain.links[1].delta.clone();
    flip_byte(&second, std::fs::metadata(&second).expect("size").len() / 2);
    // verify_backups finds it before any restore needs it.
    let found = run(&VerifyBackups, &db, SystemTime::now()).expect_err("a damaged chain");
    assert!(found.to_string().contains("000002.delta.zst"), "{found}");
    let before = std::fs::read(&db.path).expect("read");
    for later in [taken(&db, 2), taken(&db, 3) + Duration::from_secs(60)] {
        let err = restore_at(&db, later).expect_err("a damaged link");
        let text = err.to_string();
        assert!(text.contains("000002.delta.zst"), "{text}");
        assert_eq!(std::fs::read(&db.path).expect("read"), before, "unchanged");
    }
    restore_at(&db, midpoint(taken(&db, 1), taken(&db, 2))).expect("earlier");
    assert_same(&rows(&db.path), &states[0]);
    // A manifest that is gone breaks the chain after the link before it.
    std::fs::remove_file(chain.dir.join("000002.json")).expect("remove");
    let err = restore_at(&db, SystemTime::now()).expect_err("a missing link");
    assert!(err.to_string().contains("link 2 is missing"), "{err}");
    // And the next snapshot starts a new chain rather than add to it.
    assert!(matches!(snapshot(&db), Taken::NeedsFullBackup(_)));
}

/// Rows of 6 KB that spill into overflow pages, in a rollback-journal
/// database (the WAL case is the test above).
pub fn add_large(conn: &Connection, from: i64, to: i64) {
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2)
         INSERT INTO memory_entries (key, value, namespace, ttl, created_at)
         SELECT printf('k%08d', i), hex(randomblob(3000)), CASE WHEN i % 2 = 0 THEN 'ns é\u{1F600}' ELSE 'odd''s' END,
                CASE WHEN i % 3 = 0 THEN NULL ELSE i END, datetime('now') FROM n",
        [from, to],
    )
    .expect("insert large rows");
}

fn large_rows(path: &Path) -> BTreeSet<(String, String)> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT key, value FROM memory_entries")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query");
    rows.collect::<rusqlite::Result<_>>().expect("rows")
}

fn page_count(path: &Path) -> i64 {
    Connection::open(path)
        .expect("open")
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .expect("page_count")
}

#[test]
fn a_database_that_grows_and_shrinks_under_vacuum_restores_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let conn = crate::common::create_db(&db.path);
    add_large(&conn, 0, 200);
    run(&Backup, &db, SystemTime::now()).expect("full backup");
    let mut states = Vec::new();
    let mut record = || {
        assert!(matches!(snapshot(&db), Taken::Delta { .. }));
        states.push((large_rows(&db.path), page_count(&db.path)));
    };
    add_large(&conn, 200, 600);
    record();
    conn.execute("DELETE FROM memory_entries WHERE rowid % 5 != 0", [])
        .expect("delete");
    conn.execute_batch("VACUUM").expect("vacuum");
    record();
    add_large(&conn, 600, 650);
    record();
    drop(conn);
    let pages: Vec<i64> = states.iter().map(|s| s.1).collect();
    assert!(pages[1] < pages[0] / 2, "VACUUM shrank the file: {pages:?}");
    for (i, (want, pages)) in states.iter().enumerate() {
        let at = taken(&db, i + 1);
        restore_at(&db, at).expect("restore");
        assert_same(&large_rows(&db.path), want);
        assert_eq!(page_count(&db.path), *pages, "link {}", i + 1);
    }
}

mod beside;
mod processes;
