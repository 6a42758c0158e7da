//! Restore: the newest good backup, a damaged one skipped, a point in time,
//! a named file, and the refusal while another process has the database open.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use caretaker::actions::backup::Backup;
use caretaker::backups::names::backup_file_name;
use caretaker::backups::restore::{list_backups, restore, RestoreChoice, RestoreError};
use caretaker::config::Compression;
use rusqlite::Connection;

use super::{add_patterns, assert_same, backup_dir, database, flip_byte, rows, run, wal_db, DAY};

#[test]
fn restore_puts_the_newest_good_backup_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let conn = wal_db(&db.path, 100);
    let t1 = SystemTime::now() - 2 * DAY;
    run(&Backup, &db, t1).expect("backup 1");
    let at_t1 = rows(&db.path);
    add_patterns(&conn, 100, 200);
    let t2 = t1 + DAY;
    run(&Backup, &db, t2).expect("backup 2");
    let at_t2 = rows(&db.path);
    add_patterns(&conn, 200, 300);
    let latest = rows(&db.path);
    drop(conn);

    let listed = list_backups(&db).expect("list");
    assert_eq!(listed.len(), 2);
    let backups = backup_dir(&db);
    assert_eq!(
        listed[0].path,
        backups.join(backup_file_name("memory", t2, Compression::Zstd))
    );
    assert!(listed.iter().all(|b| b.verified));

    let report = restore(&db, RestoreChoice::Newest, false).expect("restore");
    println!("{report:?}");
    assert_eq!(
        report.backup,
        backups.join(backup_file_name("memory", t2, Compression::Zstd))
    );
    assert!(report.skipped.is_empty());
    assert_same(&rows(&db.path), &at_t2);
    let aside = report
        .moved_aside
        .iter()
        .find(|p| p.file_name() == Some("memory.db".as_ref()))
        .expect("the previous database was kept");
    let folder = aside.parent().and_then(|p| p.file_name()).expect("folder");
    assert!(
        folder
            .to_string_lossy()
            .starts_with("memory.db.before-restore-"),
        "{aside:?}"
    );
    assert_same(&rows(aside), &latest);
    let mode: String = Connection::open(&db.path)
        .expect("open")
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal", "the journal mode is kept");
    assert!(!dir.path().join(".memory.db.restore.tmp").exists());

    // A point in time, and a named file; each restore keeps its own copy.
    restore(
        &db,
        RestoreChoice::Before(t2 - Duration::from_secs(60)),
        false,
    )
    .expect("restore before t2");
    assert_same(&rows(&db.path), &at_t1);
    let named = backup_file_name("memory", t2, Compression::Zstd);
    restore(&db, RestoreChoice::File(named.into()), false).expect("restore by name");
    assert_same(&rows(&db.path), &at_t2);
    let err = restore(
        &db,
        RestoreChoice::Before(t1 - Duration::from_secs(60)),
        false,
    )
    .expect_err("nothing before t1");
    assert!(matches!(err, RestoreError::NoBackup { .. }), "{err}");
}

#[test]
fn a_damaged_newest_backup_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let conn = wal_db(&db.path, 100);
    let t1 = SystemTime::now() - 2 * DAY;
    run(&Backup, &db, t1).expect("backup 1");
    let at_t1 = rows(&db.path);
    add_patterns(&conn, 100, 200);
    let t2 = t1 + DAY;
    run(&Backup, &db, t2).expect("backup 2");
    drop(conn);
    let newest = backup_dir(&db).join(backup_file_name("memory", t2, Compression::Zstd));
    let len = std::fs::metadata(&newest).expect("meta").len();
    flip_byte(&newest, len / 2);

    let report = restore(&db, RestoreChoice::Newest, false).expect("restore");
    println!("{report:?}");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0, newest);
    assert!(report.skipped[0].1.contains("checksum"));
    assert_same(&rows(&db.path), &at_t1);
}

#[test]
fn restore_refuses_while_another_process_has_the_database_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    drop(wal_db(&db.path, 100));
    run(&Backup, &db, SystemTime::now()).expect("backup");
    let content = rows(&db.path);

    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute('SELECT count(*) FROM patterns').fetchall()\nprint('ready', flush=True)\nsys.stdin.read()",
        ])
        .arg(&db.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "ready");

    let err = restore(&db, RestoreChoice::Newest, false).expect_err("in use");
    println!("{err}");
    match &err {
        RestoreError::InUse { holders, .. } => {
            assert!(holders.iter().any(|h| h.pid == child.id()), "{holders:?}")
        }
        other => panic!("unexpected {other}"),
    }
    let moved = std::fs::read_dir(dir.path())
        .expect("read dir")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains("before-restore"));
    assert!(!moved, "nothing was moved aside");
    assert_same(&rows(&db.path), &content);

    let report = restore(&db, RestoreChoice::Newest, true).expect("forced");
    assert_same(&rows(&db.path), &content);
    assert!(!report.moved_aside.is_empty());
    drop(child.stdin.take());
    child.wait().expect("child exits");
}
