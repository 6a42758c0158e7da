//! Incremental chains off the host, against moto's S3 server: every link
//! goes up encrypted after its snapshot (Debian's `age` decrypts a delta),
//! `restore --from=offsite --at` on a host with no backup folder rebuilds
//! exactly the rows committed at or before each moment, the exporter shows
//! the store's recovery point, and remote retention removes a chain whole.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::common::{value, Caretaker};
use crate::moto::Moto;
use crate::offsite::{caretaker, run_backup, setup, SECRET};

fn markers(db: &Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(db).expect("open");
    let mut stmt = conn
        .prepare("SELECT n FROM markers ORDER BY n")
        .expect("markers");
    let rows = stmt.query_map([], |r| r.get(0)).expect("query");
    rows.map(|r| r.expect("row")).collect()
}

fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn chains_go_offsite_link_by_link_and_restore_at_a_moment_on_a_new_host() {
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, identity) = setup(moto.port, "caretaker-backups");
    let d = dir.path().to_path_buf();
    let config = d.join("caretaker.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replacen(
            "dir = \"backups\"\n",
            "dir = \"backups\"\nincremental_interval = \"1m\"\n",
            1,
        ),
    )
    .expect("config");
    let db = d.join("memory.db");
    rusqlite::Connection::open(&db)
        .and_then(|c| c.execute_batch("CREATE TABLE markers (n INTEGER PRIMARY KEY)"))
        .expect("markers table");
    let (job, log) = run_backup(&d);
    assert_eq!(job["status"], "succeeded", "{job} {log}");

    // Three markers, a snapshot after each; the moment after each snapshot.
    let mut moments = Vec::new();
    for n in 1..=3 {
        rusqlite::Connection::open(&db)
            .and_then(|c| c.execute("INSERT INTO markers VALUES (?1)", [n]))
            .expect("marker");
        let (ok, out) = caretaker(&d, &["backups", "snapshot"]);
        assert!(ok, "{out}");
        assert!(out.contains("uploaded 1 links offsite"), "{out}");
        moments.push(SystemTime::now());
    }
    let keys = moto.keys("caretaker-backups", "hosts/db1/");
    let chain: Vec<&String> = keys.iter().filter(|k| k.contains(".chain/")).collect();
    assert_eq!(chain.len(), 6, "three deltas and three manifests: {keys:?}");
    let delta = chain
        .iter()
        .find(|k| k.ends_with("000002.delta.zst.age"))
        .expect("the second delta, encrypted");

    // Debian's age and zstd read a delta: the chain format's magic.
    let encrypted = d.join("delta.age");
    std::fs::write(&encrypted, moto.get(&format!("caretaker-backups/{delta}"))).expect("write");
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "age -d -i '{}' '{}' | zstd -d -q -c | head -c 8",
            identity.display(),
            encrypted.display()
        ))
        .output()
        .expect("sh");
    assert_eq!(
        out.stdout,
        b"CTDELTA1",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The exporter shows the store's recovery point: the third link's moment.
    let manifest = chain
        .iter()
        .find(|k| k.ends_with("000003.json"))
        .expect("the third manifest");
    let third: Value =
        serde_json::from_slice(&moto.get(&format!("caretaker-backups/{manifest}"))).expect("json");
    let taken =
        humantime::parse_rfc3339(third["taken_at"].as_str().expect("taken_at")).expect("rfc 3339");
    let want = taken
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    // In a folder of its own (no backups, no snapshots of its own): the
    // store alone says how far its chain goes.
    let served = format!(
        "[collect]\nbackups_interval = \"1s\"\n{}",
        std::fs::read_to_string(&config)
            .expect("config")
            .replace("incremental_interval = \"1m\"\n", "")
    );
    let scratch = tempfile::tempdir().expect("tempdir");
    for f in ["memory.db", "aws-credentials"] {
        std::fs::copy(d.join(f), scratch.path().join(f)).expect("copy");
    }
    let ct = Caretaker::start(scratch, &served).await;
    let offsite = [("database", "memory"), ("source", "offsite")];
    ct.wait_for("the offsite recovery point", Duration::from_secs(60), |s| {
        value(
            s,
            "caretaker_backup_recovery_point_timestamp_seconds",
            &offsite,
        )
        .is_some_and(|v| (v - want).abs() < 0.01)
    })
    .await;
    assert!(!ct.metrics_text().await.contains(SECRET));
    ct.stop().await;

    // A new host: no backup folder; the markers are lost.
    std::fs::remove_dir_all(d.join("backups")).expect("rm backups");
    rusqlite::Connection::open(&db)
        .and_then(|c| c.execute_batch("DELETE FROM markers"))
        .expect("lose the markers");
    let at = |t: SystemTime| format!("--at={}", stamp(t));
    let (ok, out) = caretaker(&d, &["restore", "--from=offsite", &at(moments[1])]);
    assert!(ok, "{out}");
    assert!(out.contains("and 2 of its links"), "{out}");
    assert_eq!(markers(&db), [1, 2], "{out}");
    let (ok, out) = caretaker(&d, &["restore", "--from=offsite", &at(moments[0])]);
    assert!(ok, "{out}");
    assert_eq!(markers(&db), [1], "{out}");
    let (ok, out) = caretaker(&d, &["restore", "--from=offsite", &at(moments[2])]);
    assert!(ok, "{out}");
    assert_eq!(markers(&db), [1, 2, 3], "{out}");
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let (ok, out) = caretaker(&d, &["restore", "--from=offsite", &at(long_ago)]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("no offsite backup of memory was taken at or before"),
        "{out}"
    );
    assert!(!out.contains(SECRET), "{out}");
    drop(dir);
}

#[test]
fn remote_retention_removes_a_chain_with_its_full_backup() {
    use caretaker::actions::{retention::BackupRetention, Action, ActionContext};
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, _identity) = setup(moto.port, "caretaker-backups");
    let d = dir.path();
    let (job, log) = run_backup(d);
    assert_eq!(job["status"], "succeeded", "{job} {log}");
    rusqlite::Connection::open(d.join("memory.db"))
        .and_then(|c| c.execute_batch("CREATE TABLE markers (n INTEGER)"))
        .expect("a change");
    let (ok, out) = caretaker(d, &["backups", "snapshot"]);
    assert!(ok, "{out}");
    let (job, log) = run_backup(d);
    assert_eq!(job["status"], "succeeded", "{job} {log}");
    let before = moto.keys("caretaker-backups", "hosts/db1/");
    assert_eq!(
        before.iter().filter(|k| k.contains(".chain/")).count(),
        2,
        "{before:?}"
    );

    // A day of remote retention, three days on: the older backup goes, its
    // chain with it; the newest stays.
    let config = d.join("caretaker.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("retention = \"1d\"\nmonthly_retention = \"1d\"\n");
    std::fs::write(&config, text).expect("config");
    let loaded = caretaker::config::Config::load(&config).expect("config");
    let outcome = BackupRetention
        .run(&ActionContext {
            database: &loaded.databases[0],
            dry_run: false,
            deadline: std::time::Instant::now() + Duration::from_secs(120),
            now: SystemTime::now() + Duration::from_secs(3 * 86_400),
            stop: Default::default(),
            progress: Default::default(),
        })
        .expect("retention");
    assert_eq!(
        outcome.figures["offsite_backups_removed"], 1.0,
        "{outcome:?}"
    );
    let after = moto.keys("caretaker-backups", "hosts/db1/");
    assert!(!after.iter().any(|k| k.contains(".chain/")), "{after:?}");
    assert_eq!(
        after.len(),
        3,
        "the newest backup's three objects: {after:?}"
    );
}
