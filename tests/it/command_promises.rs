//! `command:` actions as `caretaker run` starts them: bounded by their
//! timeout whatever they fork, in a clean environment and a known folder,
//! with their output capped while it is read.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::create_db;

/// The documented cap of each output stream (README: the last 2 KiB).
const KEEP: usize = 2048;

/// Writes a configuration with one database and `commands`, and returns its path.
fn config(dir: &Path, extra: &str) -> PathBuf {
    drop(create_db(&dir.join("memory.db")));
    let path = dir.join("caretaker.toml");
    let text = format!("[[database]]\nname = \"memory\"\npath = \"memory.db\"\n\n{extra}");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Runs `caretaker run command:<name>`: the job record it prints, its exit
/// code, and how long it took.
fn run(config: &Path, name: &str, envs: &[(&str, &str)]) -> (serde_json::Value, i32, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .args(["run", &format!("command:{name}")])
        .arg(format!("--config.file={}", config.display()))
        .envs(envs.iter().copied())
        .output()
        .expect("run caretaker");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let job: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    (job, out.status.code().unwrap_or(-1), took)
}

/// What the command printed: the summary of a success, the error otherwise.
fn text(job: &serde_json::Value) -> String {
    job["outcome"]["summary"]
        .as_str()
        .or(job["error"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Whether process `pid` is gone: no such process, or a zombie that only
/// waits for its new parent to reap it.
fn dead(pid: i32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return true;
    };
    if rustix::process::test_kill_process(pid).is_err() {
        return true;
    }
    let stat =
        std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).unwrap_or_default();
    stat.rsplit_once(") ")
        .is_none_or(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
}

/// Reads the pid a script wrote, waiting for the file.
fn pid_in(path: &Path) -> i32 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < until, "{} never written", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_dies(pid: i32) {
    let until = Instant::now() + Duration::from_secs(5);
    while !dead(pid) {
        assert!(Instant::now() < until, "process {pid} outlived its action");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A shell that forks a long `sleep` (writing its pid to `pid_file`) and waits for it.
fn forking_command(name: &str, pid_file: &Path, timeout: &str) -> String {
    format!(
        "[[command]]\nname = \"{name}\"\nargv = [\"/bin/sh\", \"-c\", 'sleep 30 & echo $! > \"$0\"; wait; echo x', \"{}\"]\ntimeout = \"{timeout}\"\n",
        pid_file.display()
    )
}

#[test]
fn a_timeout_kills_the_grandchildren_and_returns_soon_after_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("grandchild.pid");
    let cfg = config(dir.path(), &forking_command("sleepy", &pid_file, "1s"));
    let (job, code, took) = run(&cfg, "sleepy", &[]);
    assert_eq!(code, 1, "{job}");
    assert_eq!(job["status"], "failed", "{job}");
    assert!(text(&job).contains("killed after"), "{job}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_dies(pid_in(&pid_file));
}

#[test]
fn the_action_timeout_bounds_a_command_with_a_longer_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("grandchild.pid");
    let extra = format!(
        "[responder]\naction_timeout = \"1s\"\n\n{}",
        forking_command("sleepy", &pid_file, "60s")
    );
    let cfg = config(dir.path(), &extra);
    let (job, code, took) = run(&cfg, "sleepy", &[]);
    assert_eq!(code, 1, "{job}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_dies(pid_in(&pid_file));
}

#[test]
fn the_command_sees_only_its_allowed_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        "[[command]]\nname = \"env\"\nargv = [\"/usr/bin/env\"]\nenv = { GREETING = \"hello\" }\n",
    );
    let secret = "s3cr3t-value-of-the-daemon";
    let (job, code, _) = run(&cfg, "env", &[("CARETAKER_TEST_SECRET", secret)]);
    assert_eq!(code, 0, "{job}");
    let output = text(&job);
    assert!(!output.contains(secret), "{output}");
    assert!(!output.contains("CARETAKER_TEST_SECRET"), "{output}");
    assert!(output.contains("GREETING=hello"), "{output}");
    assert!(output.contains("PATH="), "{output}");
    assert!(output.contains("CARETAKER_DATABASE=memory"), "{output}");
}

#[test]
fn output_is_capped_while_it_is_read_and_the_cut_is_said() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = 1_000_000;
    let marker = "tail-marker";
    let cfg = config(
        dir.path(),
        &format!("[[command]]\nname = \"chatty\"\nargv = [\"/bin/sh\", \"-c\", \"head -c {bytes} /dev/zero | tr '\\\\000' a; echo {marker}\"]\n"),
    );
    let (job, code, _) = run(&cfg, "chatty", &[]);
    assert_eq!(code, 0, "{job}");
    let output = text(&job);
    let written = bytes + marker.len() + 1;
    assert!(
        output.contains(&format!("output truncated: {written} bytes written")),
        "{}",
        &output[..output.len().min(300)]
    );
    assert!(output.trim_end().ends_with(marker));
    assert!(output.len() < 2 * KEEP + 200, "{}", output.len());
}

#[test]
fn the_working_folder_is_the_configuration_folder_or_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("work")).expect("mkdir");
    let cfg = config(
        dir.path(),
        "[[command]]\nname = \"here\"\nargv = [\"/bin/pwd\"]\n\n[[command]]\nname = \"there\"\nargv = [\"/bin/pwd\"]\ndir = \"work\"\n",
    );
    let base = dir.path().canonicalize().expect("canonical");
    let (job, code, _) = run(&cfg, "here", &[]);
    assert_eq!(code, 0, "{job}");
    assert!(
        text(&job).ends_with(&format!("output: {}\n", base.display())),
        "{job}"
    );
    let (job, code, _) = run(&cfg, "there", &[]);
    assert_eq!(code, 0, "{job}");
    assert!(
        text(&job).ends_with(&format!("output: {}\n", base.join("work").display())),
        "{job}"
    );
}

#[test]
fn check_config_refuses_a_timeout_that_would_overflow_a_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "[collect]\ntimeout = \"584000000000y\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .arg("check-config")
        .arg(format!("--config.file={}", cfg.display()))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Line 6 of the file: three lines of database, a blank one, then [collect].
    assert!(
        stderr.starts_with(&format!("{}:6:11: ", cfg.display())),
        "{stderr}"
    );
}

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
    let mut serve = Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .arg("serve")
        .arg(format!("--config.file={}", cfg.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start serve");
    let log = stderr_until(&mut serve, "notification failed", Duration::from_secs(30));
    let _ = serve.kill();
    let _ = serve.wait();
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
            source: "webhook",
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
    assert_eq!(jobs[0].status, "succeeded", "{:?}", jobs[0]);
    assert_eq!(jobs[1].status, "skipped", "{:?}", jobs[1]);
    assert_eq!(jobs[1].reason.as_deref(), Some("cooldown"));
    let detail = jobs[1].error.as_deref().unwrap_or_default();
    assert!(detail.starts_with("cooldown"), "{detail}");
    assert!(!detail.contains("Cooldown"), "{detail}");
    let audit = store.audit_events(10).expect("audit");
    let skipped = audit
        .iter()
        .find(|e| e.event == "skipped")
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
    assert!(e.contains("is not a regular file"), "{e}");
}
