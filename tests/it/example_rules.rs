//! Every alert docs/runbooks.md says caretaker answers by itself has its
//! `[[rule]]` in the shipped example configurations (config/caretaker.toml and
//! the one `caretaker demo` writes): posted to a running caretaker, each such
//! alert becomes a job of the action the runbooks name.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{create_db, Caretaker};
use crate::responder::{notification, write_token, TOKEN};
use crate::runbook_steps::repo_file;

/// (alert, action) for each row of the runbooks' table whose action is not "none".
fn answered_alerts() -> Vec<(String, String)> {
    let text = repo_file("docs/runbooks.md");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| [Caretaker")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let alert = cells[0]
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or_default();
        let action = cells.last().copied().unwrap_or_default();
        if action == "none" {
            continue;
        }
        let name = action.split('`').nth(1).unwrap_or_else(|| panic!("{line}"));
        out.push((alert.to_string(), name.to_string()));
    }
    out
}

async fn jobs(ct: &Caretaker, token: &str) -> Vec<Value> {
    let body: Value = ct
        .client
        .get(format!("{}/api/v1/actions?limit=100", ct.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    body["jobs"].as_array().cloned().unwrap_or_default()
}

async fn every_answered_alert_becomes_a_job(ct: Caretaker, token: &str, which: &str) {
    let alerts = answered_alerts();
    assert!(alerts.len() >= 8, "alerts with an action: {alerts:?}");
    for (i, (alert, _)) in alerts.iter().enumerate() {
        let body = notification(
            "firing",
            alert,
            &format!("fp{i:04}"),
            "2026-01-01T00:00:00Z",
        );
        let r = ct.post("/hooks/alertmanager", Some(token), &body).await;
        assert_eq!(r.status(), 202, "{which}: {alert}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = jobs(&ct, token).await;
        let missing: Vec<&(String, String)> = alerts
            .iter()
            .filter(|(alert, action)| {
                !jobs
                    .iter()
                    .any(|j| j["alertname"] == alert.as_str() && j["action"] == action.as_str())
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{which}: no job for {missing:?}; jobs: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_configuration_has_a_rule_for_every_answered_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().display().to_string();
    let text =
        repo_file("config/caretaker.toml").replace("/srv/agent/", &format!("{root}/srv/agent/"));
    std::fs::create_dir_all(dir.path().join("srv/agent/.swarm")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("srv/agent/backups")).expect("mkdir");
    create_db(&dir.path().join("srv/agent/.swarm/memory.db"));
    write_token(dir.path());
    let ct = Caretaker::start(dir, &text).await;
    every_answered_alert_becomes_a_job(ct, TOKEN, "config/caretaker.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_configuration_has_a_rule_for_every_answered_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = caretaker::demo::DemoOptions {
        patterns: 200,
        pattern_bytes: 100,
        listen_address: None,
    };
    let config = caretaker::demo::prepare(dir.path(), &options).expect("demo");
    let text = std::fs::read_to_string(&config).expect("config");
    let token = std::fs::read_to_string(dir.path().join("token")).expect("token");
    let ct = Caretaker::start(dir, &text).await;
    every_answered_alert_becomes_a_job(ct, token.trim(), "caretaker demo").await;
}

#[test]
fn the_table_names_the_alerts_caretaker_answers() {
    let alerts = answered_alerts();
    assert!(alerts
        .iter()
        .any(|(a, v)| a == "CaretakerDatabaseFragmented" && v == "vacuum"));
    assert!(!alerts.iter().any(|(a, _)| a == "CaretakerDatabaseDown"));
    assert!(Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/caretaker.toml")
        .exists());
}
