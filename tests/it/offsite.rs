//! Offsite backups against a real S3-protocol server (moto's standalone
//! server on a loopback port), decrypted by Debian's `age` command: what
//! caretaker uploads is readable without caretaker.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::create_db;

const SECRET: &str = "s3cr3t-never-logged-42";

/// moto's server on a free loopback port, killed when dropped.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    pub fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (python3 -m pip install \"moto[server]\")");
        let moto = Moto { port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http(port, "GET", "/", b"").is_none() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    pub fn create_bucket(&self, bucket: &str) {
        let (status, _) = http(self.port, "PUT", &format!("/{bucket}"), b"").expect("moto");
        assert_eq!(status, 200, "create bucket {bucket}");
    }

    /// An object's bytes, fetched with boto3 (installed with moto): not
    /// through caretaker's own client.
    pub fn get(&self, key: &str) -> Vec<u8> {
        let (bucket, key) = key.split_once('/').expect("bucket/key");
        let out = self.boto3(
            &format!(
            "sys.stdout.buffer.write(s3.get_object(Bucket={bucket:?}, Key={key:?})['Body'].read())"
        ),
            b"",
        );
        out
    }

    fn boto3(&self, statement: &str, stdin: &[u8]) -> Vec<u8> {
        let script = format!(
            "import sys, boto3\ns3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{}', region_name='us-east-1', aws_access_key_id='a', aws_secret_access_key='b')\n{statement}\n",
            self.port
        );
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("stdin");
        let out = child.wait_with_output().expect("boto3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.0 request; `None` when nothing listens.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(&answer[..split])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, answer[split + 4..].to_vec()))
}

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
fn setup(port: u16, bucket: &str) -> (tempfile::TempDir, PathBuf) {
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
fn run_backup(dir: &Path) -> (Value, String) {
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

fn local_backups(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("backups"))
        .expect("backups")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".db.zst"))
        .collect();
    out.sort();
    out
}

fn failures(dir: &Path) -> u64 {
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
