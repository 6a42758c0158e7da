//! The real Prometheus (Debian's package) scrapes caretaker: the target is up
//! and the metadata of caretaker's families is visible.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{create_db, one_database_config, Caretaker};

/// A port that was free a moment ago, for servers that cannot take port 0.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A child process killed (by its own PID) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `prometheus` with `config` (YAML) in `dir`, on a free loopback port.
pub fn start_prometheus(dir: &Path, config: &str) -> Server {
    start_prometheus_with(dir, config, &[])
}

/// [`start_prometheus`] with more command-line flags.
pub fn start_prometheus_with(dir: &Path, config: &str, flags: &[&str]) -> Server {
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).expect("write prometheus.yml");
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(flags)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus is installed (scripts/test.sh installs it)");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// GETs a Prometheus API path and returns its `data`, or None while it is not answering.
pub async fn api(client: &reqwest::Client, base: &str, path: &str) -> Option<Value> {
    let response = client.get(format!("{base}{path}")).send().await.ok()?;
    let body: Value = response.json().await.ok()?;
    (body["status"] == "success").then(|| body["data"].clone())
}

/// Polls until `check` returns Some, failing after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_caretaker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = create_db(&dir.path().join("memory.db"));
    conn.execute_batch("INSERT INTO patterns VALUES ('a', 'goap_planning', 'd', 0.95, 12, datetime('now'), datetime('now'), 'x');")
        .expect("fill");
    let ct = Caretaker::start(dir, &one_database_config("")).await;
    let target = ct.base.trim_start_matches("http://").to_string();
    let prom_dir = tempfile::tempdir().expect("tempdir");
    let prom = start_prometheus(
        prom_dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: caretaker\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    );
    let client = reqwest::Client::new();
    let health = poll(
        "the caretaker target to be scraped",
        Duration::from_secs(60),
        || async {
            let data = api(&client, &prom.base, "/api/v1/targets").await?;
            let t = data["activeTargets"].get(0)?.clone();
            (t["health"] != "unknown").then_some(t)
        },
    )
    .await;
    assert_eq!(
        health["health"], "up",
        "scrape error: {}",
        health["lastError"]
    );

    let result = poll(
        "caretaker_database_up in Prometheus",
        Duration::from_secs(30),
        || async {
            let data = api(
                &client,
                &prom.base,
                "/api/v1/query?query=caretaker_database_up",
            )
            .await?;
            let first = data["result"].get(0)?.clone();
            Some(first)
        },
    )
    .await;
    assert_eq!(result["metric"]["database"], "memory");
    assert_eq!(result["value"][1], "1");

    let meta = poll("metadata", Duration::from_secs(30), || async {
        let data = api(
            &client,
            &prom.base,
            "/api/v1/metadata?metric=caretaker_patterns",
        )
        .await?;
        data.get("caretaker_patterns").cloned()
    })
    .await;
    assert_eq!(meta[0]["type"], "gauge");
    assert!(meta[0]["help"]
        .as_str()
        .is_some_and(|h| h.contains("confidence tier")));
    drop(prom);
    ct.stop().await;
}
