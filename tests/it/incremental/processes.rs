//! The snapshot as processes run it: `caretaker backups snapshot` killed
//! with SIGKILL mid-delta, the daemon's loop, and the command line's
//! `backups list` and `restore --at`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use caretaker::actions::backup::Backup;
use caretaker::backups::chain::take::Taken;
use caretaker::config::Compression;
use rusqlite::Connection;

use super::{add_large, midpoint, newest_chain, restore_at, snapshot, taken};
use crate::backup_actions::{add_patterns, assert_same, database, rows, run, wal_db};

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
