//! Offsite backups against a real S3-protocol server (moto's standalone
//! server on a loopback port), decrypted by Debian's `age` command: what
//! caretaker uploads is readable without caretaker.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::create_db;
use crate::moto::Moto;

pub const SECRET: &str = "s3cr3t-never-logged-42";

/// A new age identity (Debian's `age-keygen`): its file and its recipient.
fn age_identity(dir: &Path) -> (PathBuf, String) {
    let identity = dir.join("backup-identity.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .output()
        .expect("age-keygen (apt-get install age)");
    assert!(out.status.success(), "{out:?}");
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&identity)
        .output()
        .expect("age-keygen -y");
    let recipient = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    (identity, recipient)
}

/// A folder with a small database, credentials and a configuration
/// uploading to `bucket` on `port`.
pub fn setup(port: u16, bucket: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = create_db(&dir.path().join("memory.db"));
    conn.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO patterns (id, type, pattern_data, created_at)
           SELECT 'p' || i, 't', hex(randomblob(100)), datetime('now') FROM n;
         INSERT INTO migrations_applied (filename, applied_at) VALUES ('001-init.sql', datetime('now'));",
    )
    .expect("rows");
    drop(conn);
    let (identity, recipient) = age_identity(dir.path());
    std::fs::write(
        dir.path().join("aws-credentials"),
        format!("[default]\naws_access_key_id = caretaker\naws_secret_access_key = {SECRET}\n"),
    )
    .expect("credentials");
    let config = format!(
        r#"[[database]]
name = "memory"
path = "memory.db"
[database.backup]
dir = "backups"
[database.backup.offsite]
url = "s3://{bucket}/hosts/db1"
endpoint = "http://127.0.0.1:{port}"
region = "us-east-1"
allow_http = true
credentials_file = "aws-credentials"
encrypt_to = ["{recipient}"]
decrypt_identity_file = "{}"
"#,
        identity.display()
    );
    std::fs::write(dir.path().join("caretaker.toml"), config).expect("config");
    (dir, identity)
}

/// `caretaker run backup`: the job's JSON and the log.
pub fn run_backup(dir: &Path) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .arg("run")
        .arg("backup")
        .arg(format!(
            "--config.file={}",
            dir.join("caretaker.toml").display()
        ))
        .output()
        .expect("caretaker");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let job = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {log}"));
    (job, log)
}

/// 20 MB of random rows in a table `blobs` of the database in `dir`: more
/// than one 16 MiB part, so its backup goes up as a multipart upload.
pub fn add_random_blobs(dir: &Path) {
    rusqlite::Connection::open(dir.join("memory.db"))
        .and_then(|c| {
            c.execute_batch(
                "CREATE TABLE blobs (b BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
                 INSERT INTO blobs SELECT randomblob(100000) FROM n;",
            )
        })
        .expect("20 MB of random rows");
}

pub fn local_backups(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("backups"))
        .expect("backups")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".db.zst"))
        .collect();
    out.sort();
    out
}

pub fn failures(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("backups/.memory.offsite-failures"))
        .map_or(0, |t| t.trim().parse().expect("a count"))
}

#[test]
fn an_uploaded_backup_decrypts_with_the_age_command_and_matches_its_manifest() {
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, identity) = setup(moto.port, "caretaker-backups");
    let (job, log) = run_backup(dir.path());
    assert_eq!(job["status"], "succeeded", "{job} {log}");
    assert_eq!(
        job["outcome"]["figures"]["offsite_backups_uploaded"], 1.0,
        "{job}"
    );
    let backup = local_backups(dir.path()).pop().expect("a local backup");
    let name = backup
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();

    // The manifest beside the local backup, and the same one remotely.
    let local: Value = serde_json::from_slice(
        &std::fs::read(format!("{}.manifest.json", backup.display())).expect("local manifest"),
    )
    .expect("json");
    let remote: Value = serde_json::from_slice(
        &moto.get(&format!("caretaker-backups/hosts/db1/{name}.manifest.json")),
    )
    .expect("json");
    assert_eq!(local, remote);
    let sidecar = moto.get(&format!("caretaker-backups/hosts/db1/{name}.sha256"));
    assert_eq!(
        sidecar,
        std::fs::read(format!("{}.sha256", backup.display())).expect("sidecar")
    );

    // Debian's age decrypts it; zstd gives a database SQLite opens.
    let encrypted = dir.path().join("download.age");
    std::fs::write(
        &encrypted,
        moto.get(&format!("caretaker-backups/hosts/db1/{name}.age")),
    )
    .expect("write");
    let restored = dir.path().join("restored.db");
    let script = format!(
        "age -d -i '{}' '{}' | zstd -d -q -o '{}'",
        identity.display(),
        encrypted.display(),
        restored.display()
    );
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(&restored).expect("open");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    let source = rusqlite::Connection::open(dir.path().join("memory.db")).expect("source");
    let count = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT count(*) FROM patterns", [], |r| r.get(0))
            .expect("count")
    };
    assert_eq!(count(&conn), count(&source));
    assert_eq!(remote["row_counts"]["patterns"], count(&source));
    assert_eq!(
        remote["migrations_applied"],
        serde_json::json!(["001-init.sql"])
    );
    assert_eq!(remote["database"], "memory");
    let sha = caretaker::backups::sidecar::sha256_file(&restored).expect("sha");
    assert_eq!(remote["sqlite_sha256"], sha.as_str());
    assert!(!log.contains(SECRET));
}

#[test]
fn a_missing_bucket_fails_the_upload_not_the_backup_and_the_next_backup_uploads_both() {
    let moto = Moto::start();
    let (dir, _) = setup(moto.port, "not-there-yet");
    let (job, log) = run_backup(dir.path());
    assert_eq!(job["status"], "succeeded", "{job} {log}");
    assert_eq!(
        job["outcome"]["figures"]["offsite_upload_failed"], 1.0,
        "{job}"
    );
    assert_eq!(local_backups(dir.path()).len(), 1);
    assert_eq!(failures(dir.path()), 1);
    assert!(log.contains("offsite upload failed"), "{log}");
    assert!(!log.contains(SECRET), "{log}");
    assert!(!job.to_string().contains(SECRET));

    moto.create_bucket("not-there-yet");
    let (job, log) = run_backup(dir.path());
    assert_eq!(job["status"], "succeeded", "{job} {log}");
    assert_eq!(
        job["outcome"]["figures"]["offsite_backups_uploaded"], 2.0,
        "{job}"
    );
    assert_eq!(failures(dir.path()), 1, "nothing more failed");
}

#[test]
fn a_server_that_is_gone_fails_the_upload_not_the_backup() {
    let moto = Moto::start();
    let port = moto.port;
    drop(moto);
    let (dir, _) = setup(port, "caretaker-backups");
    let (job, log) = run_backup(dir.path());
    assert_eq!(job["status"], "succeeded", "{job} {log}");
    assert_eq!(
        job["outcome"]["figures"]["offsite_upload_failed"], 1.0,
        "{job}"
    );
    assert_eq!(local_backups(dir.path()).len(), 1);
    assert_eq!(failures(dir.path()), 1);
    assert!(!log.contains(SECRET), "{log}");
}

pub fn caretaker(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .args(args)
        .arg(format!(
            "--config.file={}",
            dir.join("caretaker.toml").display()
        ))
        .output()
        .expect("caretaker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn an_altered_remote_backup_fails_verify_and_restore_falls_back_to_an_older_one_without_a_local_folder(
) {
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, _) = setup(moto.port, "caretaker-backups");
    let (first, log) = run_backup(dir.path());
    assert_eq!(
        first["outcome"]["figures"]["offsite_backups_uploaded"], 1.0,
        "{first} {log}"
    );
    // Rows only the newer backup holds.
    let conn = rusqlite::Connection::open(dir.path().join("memory.db")).expect("open");
    conn.execute("DELETE FROM patterns WHERE rowid % 2 = 0", [])
        .expect("delete");
    drop(conn);
    let (second, log) = run_backup(dir.path());
    assert_eq!(
        second["outcome"]["figures"]["offsite_backups_uploaded"], 1.0,
        "{second} {log}"
    );
    let names: Vec<String> = local_backups(dir.path())
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    let (older, newer) = (&names[0], &names[1]);

    let (ok, text) = caretaker(dir.path(), &["backups", "list", "--from=offsite"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(older.as_str()) && text.contains(newer.as_str()),
        "{text}"
    );
    let (ok, text) = caretaker(dir.path(), &["backups", "verify", "--from=offsite"]);
    assert!(ok, "{text}");
    assert_eq!(text.matches("ok ").count(), 2, "{text}");

    // Someone alters the newer remote copy (a valid age file of other content).
    let mut altered = moto.get(&format!("caretaker-backups/hosts/db1/{newer}.age"));
    let last = altered.len() - 1;
    altered[last] ^= 0x55;
    moto.put(
        &format!("caretaker-backups/hosts/db1/{newer}.age"),
        &altered,
    );
    let (ok, text) = caretaker(dir.path(), &["backups", "verify", "--from=offsite"]);
    assert!(!ok, "verify must refuse an altered backup: {text}");
    assert!(
        text.contains("FAILED") && text.contains(newer.as_str()),
        "{text}"
    );
    assert!(text.contains("ok "), "{text}");

    // A new host: no backup folder at all; the restore falls back to the older copy.
    std::fs::remove_dir_all(dir.path().join("backups")).expect("rm backups");
    let (ok, text) = caretaker(dir.path(), &["restore", "--from=offsite"]);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("skipped {newer}")), "{text}");
    let conn = rusqlite::Connection::open(dir.path().join("memory.db")).expect("open");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM patterns", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 500, "the older backup's rows are back");
    assert!(dir.path().join("backups").join(older).exists());
    assert!(!text.contains(SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exporter_reports_the_offsite_store_from_its_background_listing() {
    use crate::common::{value, Caretaker};
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, _) = setup(moto.port, "caretaker-backups");
    let config = format!(
        "[collect]\nbackups_interval = \"1s\"\n{}",
        std::fs::read_to_string(dir.path().join("caretaker.toml")).expect("config")
    );
    let path = dir.path().to_path_buf();
    let ct = Caretaker::start(dir, &config).await;
    let db = [("database", "memory")];
    let wait = std::time::Duration::from_secs(60);
    ct.wait_for("reachable, no backups", wait, |s| {
        value(s, "caretaker_offsite_reachable", &db) == Some(1.0)
            && value(s, "caretaker_offsite_backup_files", &db) == Some(0.0)
    })
    .await;
    let p = path.clone();
    let (job, log) = tokio::task::spawn_blocking(move || run_backup(&p))
        .await
        .expect("join");
    assert_eq!(
        job["outcome"]["figures"]["offsite_backups_uploaded"], 1.0,
        "{job} {log}"
    );
    let samples = ct
        .wait_for("one offsite backup", wait, |s| {
            value(s, "caretaker_offsite_backup_files", &db) == Some(1.0)
        })
        .await;
    let size = value(&samples, "caretaker_offsite_backup_last_size_bytes", &db);
    assert!(size.is_some_and(|s| s > 0.0), "{size:?}");
    let when = value(
        &samples,
        "caretaker_offsite_backup_last_success_timestamp_seconds",
        &db,
    );
    assert!(when.is_some_and(|w| w > 1.7e9), "{when:?}");
    assert_eq!(
        value(&samples, "caretaker_offsite_upload_failures_total", &db),
        Some(0.0)
    );

    drop(moto);
    let p = path.clone();
    let (job, _) = tokio::task::spawn_blocking(move || run_backup(&p))
        .await
        .expect("join");
    assert_eq!(job["status"], "succeeded", "{job}");
    ct.wait_for("unreachable, one failure", wait, |s| {
        value(s, "caretaker_offsite_reachable", &db) == Some(0.0)
            && value(s, "caretaker_offsite_upload_failures_total", &db) == Some(1.0)
    })
    .await;
    assert!(!ct.metrics_text().await.contains(SECRET));
    ct.stop().await;
}
