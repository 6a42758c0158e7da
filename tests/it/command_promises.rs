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
pub(crate) fn config(dir: &Path, extra: &str) -> PathBuf {
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

/// A `caretaker serve` that is killed even when the test fails half way (a
/// command it started then ends at its own pace).
pub(crate) struct Serve(pub(crate) std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn shutdown_kills_a_running_command_and_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("grandchild.pid");
    let extra = format!(
        "{}\n[[schedule]]\nname = \"often\"\ncron = \"* * * * * *\"\nactions = [\"command:sleepy\"]\n",
        forking_command("sleepy", &pid_file, "60s")
    );
    let cfg = config(dir.path(), &extra);
    let mut serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_caretaker"))
            .arg("serve")
            .arg(format!("--config.file={}", cfg.display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start serve"),
    );
    let grandchild = pid_in(&pid_file);
    let serve_pid = rustix::process::Pid::from_child(&serve.0);
    rustix::process::kill_process(serve_pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let until = Instant::now() + Duration::from_secs(10);
    while serve.0.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < until, "serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_dies(grandchild);
}
