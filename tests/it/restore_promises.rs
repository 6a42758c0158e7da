//! What `restore` and `restore-archive` promise, with the real binary where a
//! user would run it: from the configuration's own folder with a bare
//! `--config.file=caretaker.toml`, through a symlinked database or
//! configuration, against a planted symlink, and bit for bit for REAL values.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

use caretaker::actions::backup::Backup;
use caretaker::backups::restore::{restore_with, RestoreChoice, RestoreError, RestoreSeams};
use caretaker::config::Compression;
use rusqlite::Connection;

use crate::backup_actions::{add_patterns, assert_same, database, rows, run, wal_db};
use crate::common::create_db;

const CONFIG: &str = r#"[[database]]
name = "memory"
path = "memory.db"
[database.backup]
dir = "backups"
[database.prune]
enabled = true
low_confidence = 1.0
[database.vacuum]
enabled = true
"#;

/// `caretaker ARGS --config.file=caretaker.toml`, run in `dir`.
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
        "caretaker {args:?} in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A folder with `caretaker.toml` and a WAL database `memory.db` of 100 rows.
fn folder_with_database() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("caretaker.toml"), CONFIG).expect("config");
    drop(wal_db(&dir.path().join("memory.db"), 100));
    dir
}

/// The folders restores kept the previous files in, sorted.
fn kept_folders(dir: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}.before-restore-");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

#[test]
fn restore_from_the_configurations_folder_with_a_bare_name() {
    let dir = folder_with_database();
    let here = dir.path();
    ok_in(here, &["run", "backup"]);
    let backed_up = rows(&here.join("memory.db"));
    add_patterns(
        &Connection::open(here.join("memory.db")).expect("open"),
        100,
        150,
    );

    ok_in(here, &["restore"]);
    assert_same(&rows(&here.join("memory.db")), &backed_up);
    // The swap was reported as done, so the next restore is not blocked.
    ok_in(here, &["restore"]);
    assert_eq!(kept_folders(here, "memory.db").len(), 2);
    ok_in(here, &["backups", "verify"]);
}

#[test]
fn vacuum_from_the_configurations_folder_with_a_bare_name() {
    let dir = folder_with_database();
    let out = ok_in(dir.path(), &["run", "vacuum"]);
    assert!(out.contains("VACUUM released"), "{out}");
}

#[test]
fn backup_and_its_retention_from_the_configurations_folder_with_a_bare_name() {
    let dir = folder_with_database();
    ok_in(dir.path(), &["run", "backup"]);
    ok_in(dir.path(), &["run", "verify_backups"]);
    ok_in(dir.path(), &["run", "backup_retention"]);
    let listed = ok_in(dir.path(), &["backups", "list"]);
    assert!(listed.contains("checksum ok"), "{listed}");
}

#[test]
fn commands_follow_a_symlinked_configuration_from_its_folder() {
    // Relative paths resolve against the folder the file was named in.
    let top = tempfile::tempdir().expect("tempdir");
    let (conf, here) = (top.path().join("conf"), top.path().join("run"));
    std::fs::create_dir_all(&conf).expect("conf");
    std::fs::create_dir_all(&here).expect("run");
    std::fs::write(conf.join("caretaker.toml"), CONFIG).expect("config");
    std::os::unix::fs::symlink("../conf/caretaker.toml", here.join("caretaker.toml"))
        .expect("link");
    drop(wal_db(&here.join("memory.db"), 100));
    ok_in(&here, &["run", "backup"]);
    ok_in(&here, &["run", "vacuum"]);
    ok_in(&here, &["restore"]);
    assert_eq!(kept_folders(&here, "memory.db").len(), 1);
    assert!(!conf.join("backups").exists());
}

#[test]
fn restore_through_a_symlinked_database_writes_the_file_it_leads_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (here, data) = (dir.path(), dir.path().join("data"));
    std::fs::create_dir(&data).expect("data");
    std::fs::write(here.join("caretaker.toml"), CONFIG).expect("config");
    drop(wal_db(&data.join("real.db"), 100));
    std::os::unix::fs::symlink("data/real.db", here.join("memory.db")).expect("link");
    ok_in(here, &["run", "backup"]);
    let backed_up = rows(&data.join("real.db"));
    add_patterns(
        &Connection::open(here.join("memory.db")).expect("open"),
        100,
        150,
    );
    let latest = rows(&data.join("real.db"));

    // A process holding the real file through the link is seen.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute('SELECT count(*) FROM patterns').fetchall()\nprint('ready', flush=True)\nsys.stdin.read()",
        ])
        .arg(here.join("memory.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("ready line");
    assert_eq!(line.trim(), "ready");
    let refused = caretaker_in(here, &["restore"]);
    drop(holder.stdin.take());
    let _ = holder.wait();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a holder of real.db: {stderr}");
    assert!(stderr.contains("is open in"), "{stderr}");
    assert_same(&rows(&data.join("real.db")), &latest);

    ok_in(here, &["restore"]);
    let link = std::fs::symlink_metadata(here.join("memory.db")).expect("link");
    assert!(link.file_type().is_symlink(), "the link stays a link");
    assert_same(&rows(&data.join("real.db")), &backed_up);
    let kept = kept_folders(&data, "real.db");
    assert_eq!(kept.len(), 1, "kept beside the real file");
    assert_same(&rows(&kept[0].join("real.db")), &latest);
    assert!(kept_folders(here, "memory.db").is_empty());
}

#[test]
fn each_restore_keeps_the_database_and_its_wal_together_in_a_folder_of_its_own() {
    let dir = folder_with_database();
    let here = dir.path();
    let db = here.join("memory.db");
    ok_in(here, &["run", "backup"]);
    // Leave committed rows only in the -wal: copy the files while a
    // connection that does not checkpoint has them, as a crash would.
    let shots = tempfile::tempdir().expect("tempdir");
    {
        let conn = Connection::open(&db).expect("open");
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no checkpoint");
        add_patterns(&conn, 100, 180);
        for side in ["", "-wal"] {
            let name = format!("memory.db{side}");
            std::fs::copy(here.join(&name), shots.path().join(&name)).expect("copy");
        }
    }
    for side in ["", "-wal"] {
        let name = format!("memory.db{side}");
        std::fs::copy(shots.path().join(&name), here.join(&name)).expect("copy back");
    }
    let _ = std::fs::remove_file(here.join("memory.db-shm"));
    let with_wal = rows(&shots.path().join("memory.db"));
    assert_eq!(with_wal.len(), 180);

    ok_in(here, &["restore"]);
    let first = kept_folders(here, "memory.db");
    assert_eq!(first.len(), 1);
    assert!(
        first[0].join("memory.db-wal").exists(),
        "the -wal moved along"
    );
    add_patterns(&Connection::open(&db).expect("open"), 500, 510);
    ok_in(here, &["restore"]);
    let both = kept_folders(here, "memory.db");
    assert_eq!(both.len(), 2, "a second restore keeps a second folder");
    assert_same(&rows(&first[0].join("memory.db")), &with_wal);
    let second = both.iter().find(|p| **p != first[0]).expect("second");
    assert_eq!(rows(&second.join("memory.db")).len(), 110);
    for side in ["", "-wal", "-shm"] {
        assert!(!here
            .join(format!("memory.db.before-restore{side}"))
            .exists());
    }
}

#[test]
fn a_symlink_planted_after_the_check_changes_no_other_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    drop(wal_db(&db.path, 100));
    run(&Backup, &db, SystemTime::now()).expect("backup");
    let content = rows(&db.path);
    // The database is world-writable and, when we may, someone else's: a
    // chmod or chown by path would hand both to the victim.
    std::fs::set_permissions(&db.path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let root = std::fs::metadata(&db.path).expect("meta").uid() == 0;
    if root {
        std::os::unix::fs::chown(&db.path, Some(65534), Some(65534)).expect("chown");
    }
    let secret = tempfile::tempdir().expect("tempdir");
    let victim = secret.path().join("victim");
    std::fs::write(&victim, "secret").expect("victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let before = std::fs::metadata(&victim).expect("victim meta");

    let plant = |temp: &Path| {
        std::fs::remove_file(temp).expect("remove the temporary");
        std::os::unix::fs::symlink(&victim, temp).expect("plant a symlink");
    };
    let seams = RestoreSeams {
        after_check: Some(&plant),
        ..Default::default()
    };
    let result = restore_with(&db, RestoreChoice::Newest, false, &seams);
    println!("{result:?}");
    let after = std::fs::metadata(&victim).expect("victim meta");
    assert_eq!(
        after.mode(),
        before.mode(),
        "the victim's mode: {:o}",
        after.mode()
    );
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "secret");
    assert!(
        matches!(result, Err(RestoreError::Replaced(_))),
        "{result:?}"
    );
    assert_same(&rows(&db.path), &content);
    assert!(kept_folders(dir.path(), "memory.db").is_empty());
    assert!(std::fs::symlink_metadata(dir.path().join(".memory.db.restore.tmp")).is_err());
}

#[test]
fn prune_and_restore_archive_give_back_every_real_bit_for_bit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let here = dir.path();
    std::fs::write(here.join("caretaker.toml"), CONFIG).expect("config");
    let conn = create_db(&here.join("memory.db"));
    let mut values = vec![
        0.432_061_068_544_625_56,
        0.1,
        1.0 / 3.0,
        0.999_999_999_999_999_9,
        5e-324,
        f64::MIN_POSITIVE / 3.0,
        -0.0,
        f64::MIN,
        -1e300,
        f64::NEG_INFINITY,
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    while values.len() < 3000 {
        // xorshift64*: many bit patterns, the same on every run.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let v = f64::from_bits(state.wrapping_mul(0x2545_f491_4f6c_dd1d));
        if v < 1.0 {
            values.push(v);
        }
    }
    let mut insert = conn
        .prepare("INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at) VALUES (?1, 't', 'd', ?2, 0, datetime('now'))")
        .expect("prepare");
    for (i, v) in values.iter().enumerate() {
        insert.execute((format!("p{i:05}"), v)).expect("insert");
    }
    drop(insert);
    let confidences = |conn: &Connection| -> Vec<(String, u64)> {
        let mut stmt = conn
            .prepare("SELECT id, confidence FROM patterns ORDER BY id")
            .expect("prepare");
        let found = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, f64>(1)?.to_bits())))
            .expect("query");
        found.collect::<rusqlite::Result<_>>().expect("rows")
    };
    let before = confidences(&conn);

    ok_in(here, &["run", "prune_patterns"]);
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM patterns", [], |r| r.get(0))
        .expect("count");
    assert_eq!(left, 0, "every row was a candidate");
    let mut archives: Vec<PathBuf> = std::fs::read_dir(here.join("archive/memory"))
        .expect("archives")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
        .collect();
    archives.sort();
    assert!(!archives.is_empty());
    for archive in &archives {
        let relative = archive.strip_prefix(here).expect("inside");
        let name = relative.to_str().expect("utf-8");
        ok_in(here, &["restore-archive", name]);
    }
    let after = confidences(&conn);
    assert_eq!(after.len(), before.len());
    let differ: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|((id, b), (_, a))| (id, f64::from_bits(*b), f64::from_bits(*a)))
        .take(5)
        .collect();
    assert!(differ.is_empty(), "changed by the round trip: {differ:?}");
}

#[test]
fn restore_before_takes_any_rfc3339_offset() {
    let dir = folder_with_database();
    let here = dir.path();
    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    ok_in(here, &["run", "backup"]);
    let ended = chrono::Utc::now() + chrono::Duration::seconds(1);
    let plus_one = chrono::FixedOffset::east_opt(3600).expect("offset");
    let at = |t: chrono::DateTime<chrono::Utc>| {
        let local = t.with_timezone(&plus_one);
        format!(
            "--before={}",
            local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        )
    };
    // Read as UTC, half an hour before the backup would look an hour later.
    let early = at(started - chrono::Duration::minutes(30));
    assert!(early.contains("+01:00"), "{early}");
    let out = caretaker_in(here, &["restore", &early]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no usable backup"), "{early}: {stderr}");
    ok_in(
        here,
        &["restore", &at(ended + chrono::Duration::minutes(30))],
    );
}

#[test]
fn a_missing_archive_names_its_error_once() {
    let dir = folder_with_database();
    let out = caretaker_in(dir.path(), &["restore-archive", "nowhere.jsonl.zst"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("nowhere.jsonl.zst"), "{stderr}");
}
