//! End to end with Debian's Alertmanager: the same alert, posted to two
//! Alertmanager instances that both deliver to caretaker (as an HA pair does),
//! runs its action once, and the audit shows every decision.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::common::{value, Caretaker};
use crate::prometheus::{free_port, poll, Server};
use crate::responder::{responder_config, wal_database, TOKEN};

fn start_alertmanager(
    dir: &std::path::Path,
    caretaker: &str,
    token_file: &std::path::Path,
) -> Server {
    let config = format!(
        r#"route:
  receiver: caretaker
  group_by: [alertname, database]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: caretaker
    webhook_configs:
      - url: {caretaker}/hooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials_file: {token}
"#,
        token = token_file.display()
    );
    start_alertmanager_with(dir, &config)
}

/// Starts Debian's Alertmanager with `config` (YAML) in `dir`, on a free
/// loopback port, without clustering.
pub fn start_alertmanager_with(dir: &std::path::Path, config: &str) -> Server {
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, config).expect("config");
    let port = free_port();
    let log = std::fs::File::create(dir.join("alertmanager.log")).expect("log");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", path.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus-alertmanager is installed (scripts/test.sh installs it)");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Waits until Alertmanager answers `/-/ready`.
pub async fn wait_ready(client: &reqwest::Client, am: &Server) {
    poll(
        "alertmanager to answer",
        Duration::from_secs(30),
        || async {
            let r = client
                .get(format!("{}/-/ready", am.base))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
}

/// `amtool alert add ALERTNAME LABELS...` against `am`, started a minute ago.
pub fn add_alert(am: &Server, alertname: &str, labels: &[String]) {
    let started =
        humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(60)).to_string();
    let out = Command::new("amtool")
        .args(["alert", "add", alertname])
        .args(labels)
        .arg(format!("--start={started}"))
        .arg(format!("--alertmanager.url={}", am.base))
        .output()
        .expect("amtool");
    assert!(
        out.status.success(),
        "amtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_alertmanagers_deliver_one_alert_and_it_runs_once() {
    let dir = wal_database();
    let token_file = dir.path().join("token");
    let ct = Caretaker::start(dir, &responder_config("")).await;
    let ams_dir = tempfile::tempdir().expect("tempdir");
    let ams: Vec<Server> = (0..2)
        .map(|i| {
            start_alertmanager(
                &ams_dir.path().join(format!("am{i}")),
                &ct.base,
                &token_file,
            )
        })
        .collect();
    let client = reqwest::Client::new();
    for am in &ams {
        wait_ready(&client, am).await;
    }
    for am in &ams {
        add_alert(
            am,
            "CaretakerWalLarge",
            &["database=memory".into(), "severity=warning".into()],
        );
    }
    let m = ct
        .wait_for("both deliveries", Duration::from_secs(30), |m| {
            value(m, "caretaker_webhook_requests_total", &[("code", "202")]).unwrap_or(0.0) >= 2.0
                // The counters exist at 0 from the start: wait for the run itself.
                && value(
                    m,
                    "caretaker_action_runs_total",
                    &[("action", "wal_checkpoint"), ("result", "success")],
                )
                .unwrap_or(0.0)
                    >= 1.0
        })
        .await;
    assert_eq!(
        value(
            &m,
            "caretaker_action_runs_total",
            &[("action", "wal_checkpoint"), ("result", "success")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "caretaker_action_skipped_total",
            &[("action", "wal_checkpoint"), ("reason", "duplicate")]
        ),
        Some(1.0)
    );
    let jobs = ct.wait_jobs_done(1).await;
    assert_eq!(jobs.len(), 1, "one job for one episode: {jobs:?}");
    assert_eq!(jobs[0]["status"], "succeeded");
    ct.wait_for("the checkpoint's effect", Duration::from_secs(10), |m| {
        value(m, "caretaker_database_wal_size_bytes", &[]) == Some(0.0)
    })
    .await;
    let audit: Value = client
        .get(format!("{}/api/v1/audit", ct.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let events: Vec<(String, String)> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or("").to_string(),
                e["reason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for expected in [
        ("received", ""),
        ("matched", ""),
        ("ran", "succeeded"),
        ("skipped", "duplicate"),
    ] {
        assert!(
            events
                .iter()
                .any(|(e, r)| e == expected.0 && r == expected.1),
            "audit lacks {expected:?}: {events:?}"
        );
    }
    drop(ams);
    ct.stop().await;
}
