//! Incremental snapshots and `restore --at`, on real SQLite files: marker
//! rows committed at known moments while another connection keeps writing,
//! a delta damaged on disk, a database that grows and shrinks under VACUUM,
//! and a snapshot process killed with SIGKILL while it writes its delta.

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

fn snapshot(db: &DatabaseConfig) -> Taken {
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
fn newest_chain(db: &DatabaseConfig) -> Chain {
    let mut all = chains(list_backups(db).expect("list")).expect("chains");
    all.remove(0)
}

/// When link `sequence` of the newest chain was taken.
fn taken(db: &DatabaseConfig, sequence: usize) -> SystemTime {
    newest_chain(db).links[sequence - 1].taken
}

fn markers(path: &Path) -> BTreeSet<i64> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn.prepare("SELECT id FROM markers").expect("prepare");
    let ids = stmt.query_map([], |r| r.get(0)).expect("query");
    ids.collect::<rusqlite::Result<_>>().expect("markers")
}

fn restore_at(db: &DatabaseConfig, at: SystemTime) -> Result<(), RestoreError> {
    restore(db, RestoreChoice::At(at), false).map(|_| ())
}

fn midpoint(a: SystemTime, b: SystemTime) -> SystemTime {
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
fn add_large(conn: &Connection, from: i64, to: i64) {
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

fn config_file(dir: &Path, interval: &str) -> std::path::PathBuf {
    let path = dir.join("caretaker.toml");
    let text = format!(
        "[[database]]\nname = \"memory\"\npath = \"{}\"\n[database.backup]\ndir = \"{}\"\nincremental_interval = \"{interval}\"\n",
        dir.join("memory.db").display(),
        dir.join("backups").display()
    );
    std::fs::write(&path, text).expect("config");
    path
}

fn hidden_temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// `caretaker backups snapshot` killed with SIGKILL while it writes a large
/// delta: the chain still restores its previous point, and the next
/// snapshot removes the leftover and adds the link.
#[test]
fn a_snapshot_killed_mid_delta_leaves_the_chain_restorable_up_to_the_previous_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let config = config_file(dir.path(), "1m");
    let conn = wal_db(&db.path, 1_000);
    run(&Backup, &db, SystemTime::now()).expect("full backup");
    add_patterns(&conn, 1_000, 1_100);
    assert!(matches!(snapshot(&db), Taken::Delta { sequence: 1, .. }));
    let previous = rows(&db.path);
    let chain_dir = newest_chain(&db).dir;
    let mut caught = false;
    for attempt in 0..20 {
        // Tens of MB of fresh, incompressible pages: a delta that takes a while to write.
        add_large(&conn, attempt * 10_000, attempt * 10_000 + 4_000);
        let mut child = crate::common::caretaker()
            .args(["backups", "snapshot"])
            .arg(format!("--config.file={}", config.display()))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let writing = hidden_temporaries(&chain_dir)
                .iter()
                .any(|n| n.contains(".delta.zst."));
            if writing {
                child.kill().expect("SIGKILL");
                child.wait().expect("wait");
                caught = true;
                break;
            }
            if child.try_wait().expect("try_wait").is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "the snapshot did not finish");
            std::thread::yield_now();
        }
        if caught {
            break;
        }
        // It finished before it was caught: that link stands, try again on top.
    }
    assert!(caught, "never caught a snapshot mid-delta");
    let left = hidden_temporaries(&chain_dir);
    assert!(!left.is_empty(), "the killed snapshot left its temporary");
    let chain = newest_chain(&db);
    let links = chain.links.len();
    assert!(chain.broken.is_none(), "{:?}", chain.broken);
    let last_rows = if links == 1 {
        previous
    } else {
        // Earlier attempts finished: their links are whole too.
        restore_at(&db, chain.links[links - 1].taken).expect("restore the last whole link");
        rows(&db.path)
    };
    drop(conn);
    restore_at(&db, SystemTime::now()).expect("restore the newest point");
    assert_same(&rows(&db.path), &last_rows);
    assert_eq!(newest_chain(&db).links.len(), links, "no link was added");
    // The next snapshot cleans up and carries on.
    let conn = Connection::open(&db.path).expect("open");
    add_patterns(&conn, 500_000, 500_010);
    drop(conn);
    assert!(matches!(snapshot(&db), Taken::Delta { .. }));
    assert!(hidden_temporaries(&chain_dir).is_empty());
    let want = rows(&db.path);
    restore_at(&db, SystemTime::now()).expect("restore");
    assert_same(&rows(&db.path), &want);
}

/// The daemon: with no backup yet, the loop asks for a full backup (a job),
/// starts a chain on it, and the recovery point follows the writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_takes_a_full_backup_then_deltas_and_publishes_the_recovery_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = wal_db(&dir.path().join("memory.db"), 500);
    let config = std::fs::read_to_string(config_file(dir.path(), "1s")).expect("config");
    let caretaker = crate::common::Caretaker::start(dir, &config).await;
    let value = |s: &[crate::common::Sample], name: &str| {
        crate::common::value(s, name, &[("database", "memory")])
    };
    let samples = caretaker
        .wait_for("a chain", Duration::from_secs(60), |s| {
            value(s, "caretaker_backup_recovery_point_timestamp_seconds").is_some()
        })
        .await;
    let first = value(
        &samples,
        "caretaker_backup_recovery_point_timestamp_seconds",
    )
    .expect("recovery point");
    assert_eq!(
        value(&samples, "caretaker_backup_incremental_interval_seconds"),
        Some(1.0)
    );
    add_patterns(&conn, 500, 600);
    let samples = caretaker
        .wait_for("a delta", Duration::from_secs(60), |s| {
            value(s, "caretaker_backup_chain_length").is_some_and(|n| n >= 1.0)
                && value(s, "caretaker_backup_incremental_bytes_total").is_some_and(|b| b > 0.0)
        })
        .await;
    let later = value(
        &samples,
        "caretaker_backup_recovery_point_timestamp_seconds",
    )
    .expect("recovery point");
    assert!(later > first, "{later} after {first}");
    // Unchanged, the point still moves on.
    caretaker
        .wait_for("the point to move", Duration::from_secs(60), |s| {
            value(s, "caretaker_backup_recovery_point_timestamp_seconds").is_some_and(|p| p > later)
        })
        .await;
    drop(conn);
    caretaker.stop().await;
}

/// `caretaker backups list` shows the chain and its range; `caretaker
/// restore --at` (the binary, as an operator runs it) rebuilds a moment;
/// a time that is not RFC 3339 changes nothing.
#[test]
fn the_command_line_lists_chains_and_restores_a_moment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let config = config_file(dir.path(), "1m");
    let conn = wal_db(&db.path, 300);
    run(&Backup, &db, SystemTime::now()).expect("full backup");
    add_patterns(&conn, 300, 350);
    snapshot(&db);
    let first = rows(&db.path);
    add_patterns(&conn, 350, 400);
    snapshot(&db);
    drop(conn);
    let cli = |args: &[String]| {
        let out = crate::common::caretaker()
            .args(args)
            .arg(format!("--config.file={}", config.display()))
            .output()
            .expect("run");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, listed) = cli(&["backups".into(), "list".into()]);
    assert!(ok, "{listed}");
    let chain = newest_chain(&db);
    let range = format!(
        "restorable from {} to {}",
        humantime::format_rfc3339_seconds(chain.base.taken),
        humantime::format_rfc3339_seconds(chain.newest_point())
    );
    assert!(listed.contains("chain: 2 deltas"), "{listed}");
    assert!(listed.contains(&range), "{listed}");
    let before = std::fs::read(&db.path).expect("read");
    let (ok, refused) = cli(&["restore".into(), "--at=yesterday".into()]);
    assert!(!ok && refused.contains("--at"), "{refused}");
    assert_eq!(std::fs::read(&db.path).expect("read"), before);
    let at = chrono::DateTime::<chrono::Utc>::from(midpoint(taken(&db, 1), taken(&db, 2)))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (ok, restored) = cli(&["restore".into(), format!("--at={at}")]);
    assert!(ok, "{restored}");
    assert!(restored.contains("the state taken at"), "{restored}");
    assert_same(&rows(&db.path), &first);
}
