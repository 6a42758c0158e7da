//! Shared test harness: real SQLite files in a temporary folder, caretaker
//! started in-process on port 0, and a small parser for its `/metrics` output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use caretaker::config::Config;
use rusqlite::Connection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One sample of the exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses OpenMetrics text samples (enough for assertions; the strict check
/// is done by Python's parser in its own test).
pub fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, rest) = match line.find('{') {
            Some(i) => (&line[..i], &line[i..]),
            None => {
                let (n, v) = line.split_once(' ').expect("sample line");
                out.push(Sample {
                    name: n.into(),
                    labels: BTreeMap::new(),
                    value: v.trim().parse().expect("value"),
                });
                continue;
            }
        };
        let mut labels = BTreeMap::new();
        let mut chars = rest[1..].chars().peekable();
        loop {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            assert_eq!(chars.next(), Some('"'), "in {line}");
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => break,
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key.trim_start_matches(',').to_string(), value);
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                other => panic!("unexpected {other:?} in {line}"),
            }
        }
        let value: String = chars.collect();
        out.push(Sample {
            name: name.into(),
            labels,
            value: value.trim().parse().expect("value"),
        });
    }
    out
}

/// The value of the sample `name` whose labels include `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// Creates a database with the seed schema.
pub fn create_db(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("create db");
    conn.execute_batch(caretaker::demo::generate::SCHEMA)
        .expect("schema");
    conn
}

/// A running caretaker with its temporary folder.
pub struct Caretaker {
    pub dir: tempfile::TempDir,
    pub base: String,
    pub config_path: PathBuf,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Caretaker {
    /// Writes `config` (TOML) as `caretaker.toml` in `dir` and starts caretaker on port 0.
    pub async fn start(dir: tempfile::TempDir, config: &str) -> Caretaker {
        Self::start_with(dir, config, "http", reqwest::Client::new()).await
    }

    /// [`Caretaker::start`] for a caretaker that speaks `scheme` (`https`
    /// with a web config file), asked through `client` (which trusts its CA
    /// and brings its credentials).
    pub async fn start_with(
        dir: tempfile::TempDir,
        config: &str,
        scheme: &str,
        client: reqwest::Client,
    ) -> Caretaker {
        let config_path = dir.path().join("caretaker.toml");
        std::fs::write(&config_path, config).expect("write config");
        let cfg = Config::load(&config_path).expect("valid config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(caretaker::daemon::run(cfg, listener, shutdown.clone()));
        let c = Caretaker {
            dir,
            base,
            config_path,
            client,
            shutdown,
            task: Some(task),
        };
        c.wait_ready().await;
        c
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("GET")
    }

    pub async fn metrics_text(&self) -> String {
        self.get("/metrics").await.text().await.expect("body")
    }

    pub async fn metrics(&self) -> Vec<Sample> {
        parse(&self.metrics_text().await)
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.get("/-/ready").await.status() == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "caretaker did not become ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls `/metrics` until `check` holds, failing after `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&[Sample]) -> bool,
    ) -> Vec<Sample> {
        let deadline = Instant::now() + timeout;
        loop {
            let samples = self.metrics().await;
            if check(&samples) {
                return samples;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("caretaker ran cleanly");
        }
    }
}

/// A minimal configuration for one database `memory` at `memory.db` with a backup folder.
pub fn one_database_config(extra_collect: &str) -> String {
    format!(
        "[collect]\n{extra_collect}\n[[database]]\nname = \"memory\"\npath = \"memory.db\"\n[database.backup]\ndir = \"backups\"\n"
    )
}

/// The real caretaker binary, for tests that run it as a user does.
pub fn caretaker() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_caretaker"))
}

/// `caretaker check-config --config.file=PATH`, run to completion.
pub fn check_config(path: &Path) -> std::process::Output {
    caretaker()
        .arg("check-config")
        .arg(format!("--config.file={}", path.display()))
        .output()
        .expect("run check-config")
}

/// True for the name of a backup's data file (`*.db.zst`, `*.db.gz`), not
/// its `.sha256` sidecar or `.manifest.json`: what "the newest file of the
/// backup folder" means in the runbooks' steps.
pub fn is_backup_data(name: &str) -> bool {
    name.ends_with(".db.zst") || name.ends_with(".db.gz")
}
