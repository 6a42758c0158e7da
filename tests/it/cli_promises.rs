//! What the command line promises beyond its subcommands' happy paths: every
//! error of a configuration file at once, and logs that name a database as
//! its name.

use crate::common::{caretaker, check_config};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn check_config_reports_every_toml_syntax_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    // Two syntax errors, on lines 2 and 5: both must be reported.
    std::fs::write(
        &path,
        "[web]\nlisten_address = \n[collect]\ntimeout = \"10s\"\nlabel_limit = = 3\n",
    )
    .expect("write");
    let out = check_config(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [2, 5] {
        let prefix = format!("{}:{line}:", path.display());
        assert!(
            stderr.lines().any(|l| l.starts_with(&prefix)),
            "no error on line {line}: {stderr}"
        );
    }
}

#[test]
fn check_config_reports_a_mistake_in_each_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mistyped.toml");
    // An unknown key (line 2), a value of the wrong type (line 4) and a
    // database without a path (line 6): deserializing stops at the first.
    std::fs::write(
        &path,
        "[web]\nlisten_adress = \"127.0.0.1:1\"\n[collect]\ntimeout = 5\n[[database]]\nname = \"a\"\n",
    )
    .expect("write");
    let out = check_config(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (line, word) in [(2, "listen_adress"), (4, "integer"), (5, "path")] {
        let prefix = format!("{}:{line}:", path.display());
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(word)),
            "no error about {word} on line {line}: {stderr}"
        );
    }
}

/// A collector that fails logs `database=<name>`, not a Debug `Option`.
#[test]
fn a_failing_collection_logs_the_database_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Not a SQLite file: the database collector fails on it.
    std::fs::write(dir.path().join("locked.db"), vec![b'x'; 4096]).expect("write db");
    let config = dir.path().join("caretaker.toml");
    std::fs::write(
        &config,
        "[[database]]\nname = \"locked\"\npath = \"locked.db\"\n",
    )
    .expect("write config");
    let mut child = caretaker()
        .args(["serve", "--web.listen-address=127.0.0.1:0"])
        .arg(format!("--config.file={}", config.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let failed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) if line.contains("collection failed") && line.contains("database") => {
                break Some(line)
            }
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = failed.unwrap_or_else(|| panic!("no failed collection logged: {seen:?}"));
    assert!(line.contains("database=locked"), "{line}");
    assert!(!line.contains("Some("), "{line}");
}
