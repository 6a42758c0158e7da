//! What backups promise when several things happen at once: two backups of
//! one database (API, webhook, processes) never destroy each other, a
//! cooldown holds for simultaneous alerts, databases sharing a folder count
//! only their own files, names that would be hidden are refused, the lock
//! file is never followed through a link, and what caretaker writes is
//! private whatever the umask.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use caretaker::backups::listing::database_backups;
use caretaker::backups::names::is_backup_name;
use caretaker::backups::verify::verify_backup;
use caretaker::config::IntegrityMode;
use serde_json::{json, Value};

use crate::common::caretaker;
use crate::common::{create_db, value, Caretaker};
use crate::responder::{write_token, TOKEN};

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

/// A database of a few MiB (so that backups take long enough to overlap)
/// and the token, in a new temporary folder.
fn database_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = create_db(&dir.path().join("memory.db"));
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
         INSERT INTO patterns (id, type, pattern_data, created_at)
           SELECT 'p' || i, 't', hex(randomblob(400)), datetime('now') FROM n;
         INSERT INTO memory_entries (namespace, key, value, created_at, expires_at)
           VALUES ('n', 'k', 'v', '2020-01-01 00:00:00', '2020-01-02 00:00:00');",
    )
    .expect("fill");
    write_token(dir.path());
    dir
}

const CONFIG: &str = r#"[web]
token_file = "token"

[[database]]
name = "memory"
path = "memory.db"
[database.backup]
dir = "backups"
"#;

/// Every file in the backup folder is a backup that verifies end to end,
/// and nothing else (no temporaries) is left; returns how many there are.
fn every_backup_verifies(dir: &Path) -> usize {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).expect("backup folder") {
        let name = entry.expect("entry").file_name();
        names.push(name.to_string_lossy().into_owned());
    }
    let backups = database_backups(dir, "memory", far()).expect("list");
    for b in &backups {
        assert!(b.verified, "{} has no matching sidecar", b.path.display());
        verify_backup(&b.path, IntegrityMode::Full, far(), &Default::default())
            .unwrap_or_else(|why| panic!("{} is corrupt: {why}", b.path.display()));
    }
    let data: Vec<&String> = names.iter().filter(|n| is_backup_name(n)).collect();
    assert_eq!(data.len(), backups.len(), "only backups in {names:?}");
    assert_eq!(
        names.len(),
        3 * backups.len(),
        "a sidecar and a manifest each: {names:?}"
    );
    backups.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backups_through_the_api_at_once_both_succeed_and_verify() {
    let ct = Caretaker::start(database_folder(), CONFIG).await;
    let url = format!("{}/api/v1/actions/backup?wait=true", ct.base);
    let post = || ct.client.post(&url).bearer_auth(TOKEN).send();
    let (a, b) = tokio::join!(post(), post());
    for r in [a, b] {
        let body: Value = r.expect("POST").json().await.expect("json");
        assert_eq!(body["job"]["status"], "succeeded", "{body}");
    }
    let backups = ct.dir.path().join("backups");
    assert_eq!(every_backup_verifies(&backups), 2);
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notification_with_two_backup_alerts_leaves_good_backups_only() {
    let config = format!(
        "{CONFIG}\n[responder]\nmax_concurrent = 10\n\n[[rule]]\nname = \"backup\"\nmatchers = ['alertname=\"CaretakerBackupMissing\"']\nactions = [\"backup\"]\n"
    );
    let ct = Caretaker::start(database_folder(), &config).await;
    let r = ct
        .post(
            "/hooks/alertmanager",
            Some(TOKEN),
            &alerts("CaretakerBackupMissing", 2),
        )
        .await;
    assert_eq!(r.status(), 202);
    // The rule's cooldown (10 minutes by default) lets one of them run.
    let jobs = ct.wait_jobs_done(2).await;
    let status: Vec<(&Value, &Value)> = jobs.iter().map(|j| (&j["status"], &j["reason"])).collect();
    assert!(
        status.contains(&(&json!("succeeded"), &Value::Null)),
        "{jobs:#?}"
    );
    assert!(
        status.contains(&(&json!("skipped"), &json!("cooldown"))),
        "{jobs:#?}"
    );
    assert_eq!(every_backup_verifies(&ct.dir.path().join("backups")), 1);
    ct.stop().await;
}

/// One notification carrying `n` firing alerts of `alertname`, each its own episode.
fn alerts(alertname: &str, n: usize) -> Value {
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "status": "firing",
                "labels": {"alertname": alertname, "database": "memory", "replica": format!("i{i}")},
                "annotations": {}, "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "", "fingerprint": format!("f{i:015}")
            })
        })
        .collect();
    json!({
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing", "receiver": "caretaker",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": alerts
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_simultaneous_alerts_with_a_cooldown_run_the_action_once() {
    let config = format!(
        "{CONFIG}\n[responder]\nmax_concurrent = 10\n\n[[rule]]\nname = \"integrity\"\nmatchers = ['alertname=\"CaretakerIntegrityCheckStale\"']\nactions = [\"integrity_check\"]\ncooldown = \"10m\"\n"
    );
    let ct = Caretaker::start(database_folder(), &config).await;
    let r = ct
        .post(
            "/hooks/alertmanager",
            Some(TOKEN),
            &alerts("CaretakerIntegrityCheckStale", 10),
        )
        .await;
    assert_eq!(r.status(), 202);
    let jobs = ct.wait_jobs_done(10).await;
    let ran: Vec<&Value> = jobs.iter().filter(|j| j["status"] == "succeeded").collect();
    assert_eq!(ran.len(), 1, "{jobs:#?}");
    for j in jobs.iter().filter(|j| j["status"] != "succeeded") {
        assert_eq!(
            (&j["status"], &j["reason"]),
            (&json!("skipped"), &json!("cooldown"))
        );
    }
    ct.stop().await;
}

/// Starts `caretaker run ACTION` for the configuration in `dir` through
/// `/bin/sh -c 'umask 022; exec ...'`, so the modes it produces are the
/// usual umask's.
fn run_with_umask_022(dir: &Path, action: &str) -> std::process::Child {
    let script = format!("umask 022; exec \"$0\" run {action} --config.file=\"$1\"",);
    Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_caretaker"))
        .arg(dir.join("caretaker.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn status_of(out: &Output) -> (Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let job = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (job, stderr)
}

#[test]
fn three_backup_processes_at_once_all_succeed_and_every_backup_verifies() {
    let dir = database_folder();
    std::fs::write(dir.path().join("caretaker.toml"), CONFIG).expect("config");
    let children: Vec<_> = (0..3)
        .map(|_| run_with_umask_022(dir.path(), "backup"))
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        let (job, stderr) = status_of(&out);
        // All succeed, or one is cleanly refused because another held the lock too long.
        let refused = job["error"]
            .as_str()
            .is_some_and(|e| e.contains("another caretaker process"));
        assert!(job["status"] == "succeeded" || refused, "{job}\n{stderr}");
        assert!(!stderr.contains("database is locked"), "{stderr}");
    }
    assert!(every_backup_verifies(&dir.path().join("backups")) >= 1);
}

#[test]
fn everything_caretaker_writes_is_private_under_umask_022() {
    let dir = database_folder();
    let db = dir.path().join("memory.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(dir.path().join("caretaker.toml"), CONFIG).expect("config");
    for action in ["backup", "purge_expired"] {
        let out = run_with_umask_022(dir.path(), action)
            .wait_with_output()
            .expect("wait");
        let (job, stderr) = status_of(&out);
        assert_eq!(job["status"], "succeeded", "{job}\n{stderr}");
    }
    let mode = |p: &Path| {
        std::fs::symlink_metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let mut checked: Vec<(PathBuf, u32)> = Vec::new();
    for folder in ["backups", "state", "archive", "archive/memory"] {
        checked.push((dir.path().join(folder), 0o700));
    }
    for folder in ["backups", "state", "archive/memory"] {
        let files = std::fs::read_dir(dir.path().join(folder)).expect("folder");
        for f in files {
            let path = f.expect("entry").path();
            if path.is_file() {
                checked.push((path, 0o600));
            }
        }
    }
    let files = checked.iter().filter(|(_, m)| *m == 0o600).count();
    // A backup and its sidecar, the state database (and its WAL), an archive.
    assert!(files >= 4, "{checked:?}");
    for (path, expected) in &checked {
        assert_eq!(mode(path), *expected, "{}", path.display());
    }
}

#[test]
fn a_link_at_the_lock_path_is_refused_and_its_target_never_created() {
    let dir = database_folder();
    std::fs::write(dir.path().join("caretaker.toml"), CONFIG).expect("config");
    let db = dir.path().join("memory.db");
    let target = dir.path().join("nologin");
    let lock = caretaker::responder::lock::lock_path(&db);
    std::os::unix::fs::symlink(&target, &lock).expect("symlink");
    let out = caretaker()
        .args(["run", "backup"])
        .arg(format!(
            "--config.file={}",
            dir.path().join("caretaker.toml").display()
        ))
        .output()
        .expect("run");
    let (job, stderr) = status_of(&out);
    assert_eq!(out.status.code(), Some(2), "{job}\n{stderr}");
    assert_eq!(
        (&job["status"], &job["reason"]),
        (&json!("skipped"), &json!("refused"))
    );
    assert!(
        job["error"]
            .as_str()
            .is_some_and(|e| e.contains("symbolic link")),
        "{job}"
    );
    assert!(!target.exists(), "the link's target was created");
    assert!(std::fs::symlink_metadata(&lock).expect("link").is_symlink());
    assert!(
        !dir.path().join("backups").exists(),
        "the backup did not start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_sharing_a_folder_count_only_their_own_backups() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_db(&dir.path().join("memory.db"));
    create_db(&dir.path().join("agents.db"));
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).expect("mkdir");
    let name = "agents-1.db.zst";
    std::fs::write(backups.join(name), b"agents' backup").expect("backup");
    let sum = caretaker::backups::sidecar::sha256_file(&backups.join(name)).expect("hash");
    std::fs::write(
        backups.join(format!("{name}.sha256")),
        format!("{sum}  {name}\n"),
    )
    .expect("sidecar");
    let config = "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n[database.backup]\ndir = \"backups\"\n\n[[database]]\nname = \"agents\"\npath = \"agents.db\"\n[database.backup]\ndir = \"./backups\"\n";
    let path = dir.path().join("caretaker.toml");
    std::fs::write(&path, config).expect("config");

    let out = caretaker()
        .arg("check-config")
        .arg(format!("--config.file={}", path.display()))
        .output()
        .expect("check-config");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = format!(
        "{}: warning: databases agents, memory share the backup folder",
        path.display()
    );
    assert!(stderr.lines().any(|l| l.starts_with(&warning)), "{stderr}");

    let ct = Caretaker::start(dir, config).await;
    let samples = ct
        .wait_for("both backup collections", Duration::from_secs(30), |s| {
            value(s, "caretaker_backup_files", &[("database", "agents")]).is_some()
                && value(s, "caretaker_backup_files", &[("database", "memory")]).is_some()
        })
        .await;
    let files = |db| value(&samples, "caretaker_backup_files", &[("database", db)]);
    assert_eq!((files("agents"), files("memory")), (Some(1.0), Some(0.0)));
    let unverified = value(
        &samples,
        "caretaker_backup_unverified_files",
        &[("database", "memory")],
    );
    assert_eq!(unverified, Some(0.0));
    ct.stop().await;
}

#[test]
fn a_database_name_that_would_hide_its_backups_is_refused_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("caretaker.toml");
    std::fs::write(
        &path,
        "[[database]]\nname = \".swarm\"\npath = \".swarm/memory.db\"\n[database.backup]\ndir = \"backups\"\n",
    )
    .expect("config");
    let out = caretaker()
        .arg("check-config")
        .arg(format!("--config.file={}", path.display()))
        .output()
        .expect("check-config");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let at = format!(
        "{}:2:8: database name \".swarm\" must not start with '.'",
        path.display()
    );
    assert!(stderr.lines().any(|l| l.starts_with(&at)), "{stderr}");
}

/// The demo's own backup folder is as private as the ones actions create.
#[test]
fn the_demo_creates_a_private_backup_folder_under_umask_022() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("d");
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "umask 022; exec '{}' demo --dir='{}' --patterns=50 --no-serve",
            env!("CARGO_BIN_EXE_caretaker"),
            demo.display()
        ))
        .output()
        .expect("demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(demo.join("backups"))
        .expect("backups")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
}
