//! The backup, retention and verification actions and restore, on real
//! SQLite files: a live WAL database with a writer, a full filesystem, the
//! real `sha256sum`, `gzip` and a second process holding the database open.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use caretaker::actions::backup::Backup;
use caretaker::actions::{Action, ActionContext, ActionError, Outcome};
use caretaker::backups::names::backup_file_name;
use caretaker::backups::temporaries::remove_stale_temporaries;
use caretaker::backups::verify::{check_database_file, decompress};
use caretaker::collector::backups::BackupsCollector;
use caretaker::collector::Collector;
use caretaker::config::{
    BackupConfig, Compression, DatabaseConfig, IntegrityMode, PruneConfig, VacuumConfig,
};
use rusqlite::Connection;

use crate::common::create_db;

const DAY: Duration = Duration::from_secs(86_400);

pub fn database(dir: &Path, compression: Compression) -> DatabaseConfig {
    DatabaseConfig {
        name: "memory".into(),
        path: dir.join("memory.db"),
        integrity_check: IntegrityMode::Full,
        detail: Default::default(),
        backup: Some(BackupConfig {
            dir: dir.join("backups"),
            retention: 30 * DAY,
            monthly_retention: 365 * DAY,
            max_age: DAY,
            compression,
            level: if compression == Compression::Zstd {
                3
            } else {
                6
            },
            verify: IntegrityMode::Quick,
            verify_newest: 3,
            timeout: Duration::from_secs(600),
            offsite: None,
            incremental_interval: None,
            full_interval: Duration::from_secs(86_400),
        }),
        archive_dir: dir.join("archive"),
        prune: PruneConfig::default(),
        tune: Default::default(),
        vacuum: VacuumConfig::default(),
        cleanup: Vec::new(),
    }
}

pub fn backup_dir(db: &DatabaseConfig) -> PathBuf {
    db.backup.as_ref().expect("backup config").dir.clone()
}

pub fn run(
    action: &dyn Action,
    db: &DatabaseConfig,
    now: SystemTime,
) -> Result<Outcome, ActionError> {
    action.run(&ActionContext {
        database: db,
        dry_run: false,
        deadline: Instant::now() + Duration::from_secs(300),
        now,
        stop: Default::default(),
        progress: Default::default(),
    })
}

/// A WAL database with patterns `p00000000`.. of about 200 bytes each.
pub fn wal_db(path: &Path, rows: u64) -> Connection {
    let conn = create_db(path);
    conn.pragma_update(None, "journal_mode", "wal")
        .expect("wal");
    add_patterns(&conn, 0, rows);
    conn
}

pub fn add_patterns(conn: &Connection, from: u64, to: u64) {
    if to <= from {
        return;
    }
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2)
         INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at)
         SELECT printf('p%08d', i), 'type' || (i % 7), hex(randomblob(100)), (i % 100) / 100.0, i % 5, datetime('now') FROM n",
        [from as i64, to as i64],
    )
    .expect("insert patterns");
}

/// Every (id, pattern_data) of a database.
pub fn rows(path: &Path) -> BTreeSet<(String, String)> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT id, pattern_data FROM patterns")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query");
    rows.collect::<rusqlite::Result<_>>().expect("rows")
}

/// The decompressed content of a backup, in a new file beside `into`.
pub fn unpack(backup: &Path, into: &Path) -> PathBuf {
    let out = into.join(format!(
        "{}.unpacked",
        backup.file_name().expect("name").to_string_lossy()
    ));
    let _ = std::fs::remove_file(&out);
    decompress(backup, &out, Instant::now() + Duration::from_secs(300)).expect("decompress");
    out
}

/// Compares row sets without printing thousands of rows.
pub fn assert_same(got: &BTreeSet<(String, String)>, want: &BTreeSet<(String, String)>) {
    let extra = got.difference(want).count();
    let missing = want.difference(got).count();
    assert!(
        extra == 0 && missing == 0,
        "{} rows, {} expected: {extra} unexpected, {missing} missing",
        got.len(),
        want.len()
    );
}

pub fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

pub fn sha256sum_check(dir: &Path, file: &str) {
    let out = Command::new("sha256sum")
        .args(["-c", &format!("{file}.sha256")])
        .current_dir(dir)
        .output()
        .expect("run sha256sum");
    assert!(
        out.status.success(),
        "sha256sum -c {file}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn flip_byte(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.read_exact(&mut b).expect("read");
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.write_all(&[b[0] ^ 0x40]).expect("write");
}

#[test]
fn backup_of_a_busy_wal_database_is_consistent_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    drop(wal_db(&db.path, 50_000));

    let committed = Arc::new(AtomicU64::new(49_999));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, committed, stop) = (db.path.clone(), committed.clone(), stop.clone());
        std::thread::spawn(move || -> rusqlite::Result<Vec<(Instant, Duration)>> {
            let conn = Connection::open(&path)?;
            // Readers never block a WAL writer; a short timeout only covers
            // the checkpoint's brief locks.
            conn.busy_timeout(Duration::from_millis(100))?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let mut commits = Vec::new();
            let mut n = committed.load(Ordering::SeqCst) + 1;
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                conn.execute(
                    "INSERT INTO patterns (id, type, pattern_data, created_at) VALUES (printf('p%08d', ?1), 'live', hex(randomblob(100)), datetime('now'))",
                    [n as i64],
                )?;
                commits.push((t, t.elapsed()));
                committed.store(n, Ordering::SeqCst);
                n += 1;
            }
            Ok(commits)
        })
    };
    // A baseline of a second's writes without a backup.
    std::thread::sleep(Duration::from_secs(1));
    let before = committed.load(Ordering::SeqCst);
    let (started, now) = (Instant::now(), SystemTime::now());
    let outcome = run(&Backup, &db, now).expect("backup");
    let ended = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let commits = writer
        .join()
        .expect("writer thread")
        .expect("the writer never failed");
    let longest = |during: bool| {
        commits
            .iter()
            .filter(|(t, _)| (*t >= started && *t <= ended) == during)
            .map(|(_, d)| *d)
            .max()
            .unwrap_or_default()
    };
    let during = commits
        .iter()
        .filter(|(t, _)| *t >= started && *t <= ended)
        .count();
    println!(
        "backup: {outcome:?}\nwriter: {} commits, {during} during the backup; longest commit during the backup {:?}, outside it {:?}",
        commits.len(),
        longest(true),
        longest(false)
    );
    assert!(during > 0, "the writer was blocked during the backup");

    let backups = backup_dir(&db);
    let name = backup_file_name("memory", now, Compression::Zstd);
    assert_eq!(
        names_in(&backups),
        BTreeSet::from([
            name.clone(),
            format!("{name}.sha256"),
            format!("{name}.manifest.json")
        ]),
        "no temporary file is left"
    );
    sha256sum_check(&backups, &name);
    let size = std::fs::metadata(backups.join(&name)).expect("meta").len();
    assert_eq!(outcome.figures["bytes_written"], size as f64);
    assert!(outcome.figures["compression_ratio"] > 1.0);
    assert_eq!(outcome.figures["files_removed"], 0.0);

    let restored = unpack(&backups.join(&name), dir.path());
    check_database_file(
        &restored,
        IntegrityMode::Full,
        Instant::now() + Duration::from_secs(60),
    )
    .expect("integrity_check passes");
    let ids: BTreeSet<String> = rows(&restored).into_iter().map(|(id, _)| id).collect();
    let missing: Vec<u64> = (0..=before)
        .filter(|i| !ids.contains(&format!("p{i:08}")))
        .collect();
    assert!(
        missing.is_empty(),
        "rows committed before the backup are missing: {:?}",
        &missing[..missing.len().min(10)]
    );
    let live: BTreeSet<String> = rows(&db.path).into_iter().map(|(id, _)| id).collect();
    assert!(ids.is_subset(&live));
    // One snapshot: the writer inserts ids in order, so the copy holds an
    // unbroken prefix of them, none missing in the middle.
    let newest = ids.iter().next_back().expect("rows");
    let count: u64 = newest[1..].parse::<u64>().expect("id number") + 1;
    assert_eq!(ids.len() as u64, count, "the copy is a single snapshot");
    // The published copy is an ordinary rollback-journal database: it needs
    // no -wal or -shm file to be opened or restored.
    let header = std::fs::read(&restored).expect("read copy");
    assert_eq!((header[18], header[19]), (1, 1), "not in WAL mode");

    let collector = BackupsCollector::new(&backups, DAY);
    let (files, _) = collector
        .scan(Instant::now() + Duration::from_secs(60))
        .expect("scan");
    assert_eq!(files.len(), 1);
    assert!(files[0].verified);
    let set = collector
        .collect(Instant::now() + Duration::from_secs(60))
        .expect("collect");
    assert_eq!(set.value("caretaker_backup_files", &[]), Some(1.0));
    assert_eq!(
        set.value("caretaker_backup_unverified_files", &[]),
        Some(0.0)
    );
}

#[test]
fn gzip_backups_are_standard_gzip() {
    use std::io::Read;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Gzip);
    drop(wal_db(&db.path, 2_000));
    let now = SystemTime::now();
    run(&Backup, &db, now).expect("backup");
    let name = backup_file_name("memory", now, Compression::Gzip);
    assert!(name.ends_with(".db.gz"));
    let backups = backup_dir(&db);
    sha256sum_check(&backups, &name);
    let status = Command::new("gzip")
        .args(["-t", &name])
        .current_dir(&backups)
        .status()
        .expect("run gzip");
    assert!(status.success(), "gzip -t");

    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(backups.join(&name)).expect("open"))
        .read_to_end(&mut plain)
        .expect("gunzip");
    let copy = dir.path().join("gunzipped.db");
    std::fs::write(&copy, &plain).expect("write");
    assert_same(&rows(&copy), &rows(&db.path));
}

#[test]
fn dry_run_writes_nothing_and_stale_temporaries_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    drop(wal_db(&db.path, 100));
    let outcome = Backup
        .run(&ActionContext {
            database: &db,
            dry_run: true,
            deadline: Instant::now() + Duration::from_secs(60),
            now: SystemTime::now(),
            stop: Default::default(),
            progress: Default::default(),
        })
        .expect("dry run");
    assert!(
        outcome.summary.starts_with("would back up"),
        "{}",
        outcome.summary
    );
    assert!(!backup_dir(&db).exists());

    let backups = backup_dir(&db);
    assert_eq!(remove_stale_temporaries(&backups).expect("missing dir"), 0);
    run(&Backup, &db, SystemTime::now()).expect("backup");
    let kept = names_in(&backups);
    for stale in [
        ".memory-20260101T000000Z.db.tmp",
        ".memory-20260101T000000Z.db.zst.tmp",
        ".x.verify.tmp",
    ] {
        std::fs::write(backups.join(stale), b"left by a crash").expect("write");
    }
    std::fs::write(backups.join("notes.tmp"), b"not hidden: not ours").expect("write");
    assert_eq!(remove_stale_temporaries(&backups).expect("clean"), 3);
    let mut expected = kept;
    expected.insert("notes.tmp".into());
    assert_eq!(names_in(&backups), expected);
}

mod bench;
mod no_room;
mod restoring;
mod retention;
mod verify;
