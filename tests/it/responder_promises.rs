//! Smaller promises of the responder as a user meets them: notification
//! failures logged without their URL, `cleanup_files` never through a linked
//! folder, held jobs explained in words, `limit=0`, and a folder as token file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::command_promises::{config, Serve};

/// Reads `serve`'s stderr until a line contains `wanted`; returns everything read.
fn stderr_until(child: &mut std::process::Child, wanted: &str, timeout: Duration) -> String {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let until = Instant::now() + timeout;
    let mut log = String::new();
    while !log.contains(wanted) {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
            }
            Err(_) => break,
        }
    }
    log
}

#[test]
fn a_failing_notification_is_logged_without_its_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let secret = "T000-B000-hooksecretpath";
    let cfg = config(
        dir.path(),
        &format!(
            "[responder]\nnotify_url = \"http://127.0.0.1:{port}/services/{secret}\"\n\n[[schedule]]\nname = \"often\"\ncron = \"* * * * * *\"\nactions = [\"analyze\"]\n"
        ),
    );
    let mut serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_caretaker"))
            .arg("serve")
            .arg(format!("--config.file={}", cfg.display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start serve"),
    );
    let log = stderr_until(&mut serve.0, "notification failed", Duration::from_secs(30));
    drop(serve);
    assert!(log.contains("notification failed"), "{log}");
    assert!(!log.contains(secret), "{log}");
}

#[test]
fn cleanup_refuses_a_folder_replaced_by_a_link_and_removes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let old = std::time::SystemTime::now() - Duration::from_secs(40 * 86_400);
    let victims: Vec<PathBuf> = ["a.log", "b.log"]
        .iter()
        .map(|n| elsewhere.join(n))
        .collect();
    for v in &victims {
        std::fs::File::create(v)
            .and_then(|f| f.set_modified(old))
            .expect("old file");
    }
    std::os::unix::fs::symlink(&elsewhere, dir.path().join("logs")).expect("symlink");
    let cfg = config(
        dir.path(),
        "[[database.cleanup]]\ndir = \"logs\"\npattern = \"*.log\"\nolder_than = \"30d\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .args(["run", "cleanup_files"])
        .arg(format!("--config.file={}", cfg.display()))
        .output()
        .expect("run");
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the job as JSON");
    assert_eq!(out.status.code(), Some(2), "{job}");
    assert_eq!(job["reason"], "refused", "{job}");
    assert!(
        job["error"]
            .as_str()
            .is_some_and(|e| e.contains("symbolic link")),
        "{job}"
    );
    for v in &victims {
        assert!(v.exists(), "{} was removed through the link", v.display());
    }
}

/// Records `n` automatic jobs of `analyze` with a 10 minute cooldown and runs them in order.
async fn run_webhook_jobs(
    dir: &Path,
    n: usize,
) -> (
    std::sync::Arc<caretaker::responder::state::StateStore>,
    Vec<caretaker::responder::state::JobRecord>,
) {
    use caretaker::responder::state::{NewJob, Recorded, StateStore};
    use std::sync::Arc;
    let cfg = caretaker::config::Config::load(&config(dir, "")).expect("config");
    let (store, _) = StateStore::open(&cfg.responder.state_path, 1.0).expect("state");
    let store = Arc::new(store);
    let metrics = Arc::new(caretaker::responder::metrics::ResponderMetrics::register(
        &mut prometheus_client::registry::Registry::default(),
    ));
    let executor = caretaker::responder::executor::Executor::new(store.clone(), metrics);
    let mut done = Vec::new();
    for i in 0..n {
        let job = NewJob {
            key: format!("hook/{i}"),
            source: caretaker::responder::job::JobSource::Webhook,
            action: "analyze".into(),
            database: "memory".into(),
            cooldown: Duration::from_secs(600),
            ..Default::default()
        };
        let recorded = store.record(&[job], &[], 2.0).expect("record");
        let Some(Recorded::New(id)) = recorded.first() else {
            panic!("not recorded: {recorded:?}");
        };
        done.push(executor.execute(&cfg, *id).await.expect("executed"));
    }
    (store, done)
}

#[tokio::test]
async fn a_skipped_job_says_why_in_the_words_of_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, jobs) = run_webhook_jobs(dir.path(), 2).await;
    assert_eq!(
        jobs[0].status,
        caretaker::responder::job::JobStatus::Succeeded,
        "{:?}",
        jobs[0]
    );
    assert_eq!(
        jobs[1].status,
        caretaker::responder::job::JobStatus::Skipped,
        "{:?}",
        jobs[1]
    );
    assert_eq!(
        jobs[1].reason,
        Some(caretaker::responder::job::SkipReason::Cooldown)
    );
    let detail = jobs[1].error.as_deref().unwrap_or_default();
    assert!(detail.starts_with("cooldown"), "{detail}");
    assert!(!detail.contains("Cooldown"), "{detail}");
    let audit = store.audit_events(10).expect("audit");
    let skipped = audit
        .iter()
        .find(|e| e.event == caretaker::responder::job::AuditKind::Skipped)
        .expect("a skip in the audit");
    assert_eq!(skipped.detail.as_deref(), Some(detail));
}

#[tokio::test]
async fn a_limit_of_zero_lists_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, jobs) = run_webhook_jobs(dir.path(), 2).await;
    assert_eq!(jobs.len(), 2);
    let filter = |limit| caretaker::responder::state::JobFilter {
        limit,
        ..Default::default()
    };
    assert_eq!(store.jobs(&filter(0)).expect("jobs").len(), 0);
    assert_eq!(store.jobs(&filter(1)).expect("jobs").len(), 1);
    assert!(store.audit_events(0).expect("audit").is_empty());
    let out = Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .args(["history", "--limit=0"])
        .arg(format!(
            "--config.file={}",
            dir.path().join("caretaker.toml").display()
        ))
        .output()
        .expect("history");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "only the header: {stdout}");
}

#[test]
fn a_folder_given_as_token_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("token");
    std::fs::create_dir(&folder).expect("mkdir");
    let e = caretaker::web::auth::load_token(&folder).expect_err("a folder is no token");
    assert!(e.1.contains("is not a regular file"), "{}", e.1);
}
