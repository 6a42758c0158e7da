//! The responder over real HTTP: authentication, intake, deduplication,
//! cooldown, the action API, and effects visible in `/metrics`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{create_db, value, Caretaker};

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A configuration with a token and rules for wal_checkpoint and integrity_check.
pub fn responder_config(extra: &str) -> String {
    format!(
        r#"[web]
token_file = "token"

[[database]]
name = "memory"
path = "memory.db"

[[rule]]
name = "checkpoint"
matchers = ['alertname="CaretakerWalLarge"']
actions = ["wal_checkpoint"]
cooldown = "1h"

[[rule]]
name = "integrity"
matchers = ['alertname="CaretakerIntegrityCheckStale"', 'severity=~"warning|critical"']
actions = ["integrity_check"]
{extra}"#
    )
}

/// A temporary folder with a WAL database holding un-checkpointed writes, and the token.
pub fn wal_database() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = create_db(&dir.path().join("memory.db"));
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
        .expect("wal");
    conn.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO patterns (id, type, pattern_data, created_at) SELECT 'p' || i, 't', hex(randomblob(200)), datetime('now') FROM n;",
    )
    .expect("fill");
    std::mem::forget(conn); // keep the WAL: closing the last connection would checkpoint it
    write_token(dir.path());
    dir
}

pub fn write_token(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).expect("token");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

pub fn notification(status: &str, alertname: &str, fingerprint: &str, starts_at: &str) -> Value {
    json!({
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": status, "receiver": "caretaker",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": [{
            "status": status,
            "labels": {"alertname": alertname, "database": "memory", "severity": "warning"},
            "annotations": {}, "startsAt": starts_at,
            "endsAt": if status == "resolved" { "2026-01-01T00:10:00Z" } else { "0001-01-01T00:00:00Z" },
            "generatorURL": "", "fingerprint": fingerprint
        }]
    })
}

impl Caretaker {
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{}", self.base, path))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("POST")
    }

    pub async fn jobs(&self) -> Vec<Value> {
        let r = self
            .client
            .get(format!("{}/api/v1/actions", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("GET");
        let body: Value = r.json().await.expect("json");
        body["jobs"].as_array().cloned().unwrap_or_default()
    }

    /// The audit's newest events (`/api/v1/audit`, its default limit).
    pub async fn audit_events(&self) -> Vec<Value> {
        let body: Value = self
            .client
            .get(format!("{}/api/v1/audit", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("json");
        body["events"].as_array().cloned().expect("events")
    }

    pub async fn wait_jobs_done(&self, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let jobs = self.jobs().await;
            if jobs.len() >= n
                && jobs
                    .iter()
                    .all(|j| j["status"] != "queued" && j["status"] != "running")
            {
                return jobs;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "jobs did not finish: {jobs:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_endpoint_refuses_without_the_right_token() {
    let dir = wal_database();
    let ct = Caretaker::start(dir, &responder_config("")).await;
    let body = notification("firing", "CaretakerWalLarge", "fp1", "2026-01-01T00:00:00Z");
    for (token, path) in [
        (None, "/hooks/alertmanager"),
        (Some("wrong-token-0123456789abcdef"), "/hooks/alertmanager"),
        (Some("x"), "/hooks/alertmanager"),
        (Some(&format!("{TOKEN}{TOKEN}")[..]), "/hooks/alertmanager"),
        (None, &format!("/hooks/alertmanager?token={TOKEN}")[..]),
        (
            Some(TOKEN),
            &format!("/hooks/alertmanager?token={TOKEN}")[..],
        ),
        (None, "/api/v1/actions/wal_checkpoint"),
        (
            Some("wrong-token-0123456789abcdef"),
            "/api/v1/actions/wal_checkpoint",
        ),
    ] {
        let r = ct.post(path, token, &body).await;
        assert_eq!(r.status(), 401, "{path} with {token:?}");
    }
    let r = ct
        .client
        .get(format!("{}/api/v1/actions", ct.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401);
    let m = ct.metrics().await;
    let refused: f64 = m
        .iter()
        .filter(|s| s.name == "caretaker_auth_failures_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(refused, 9.0);
    assert!(ct.jobs().await.is_empty(), "nothing was recorded or run");
    ct.stop().await;

    // Without a token file, POST endpoints are closed and say why.
    let dir = wal_database();
    let ct = Caretaker::start(
        dir,
        "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n",
    )
    .await;
    let r = ct.post("/hooks/alertmanager", Some(TOKEN), &body).await;
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .expect("body")
        .contains("no token configured"));
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_runs_its_action_once_and_the_effect_shows_in_metrics() {
    let dir = wal_database();
    let ct = Caretaker::start(dir, &responder_config("")).await;
    let before = value(
        &ct.metrics().await,
        "caretaker_database_wal_size_bytes",
        &[],
    )
    .expect("wal");
    assert!(
        before > 100_000.0,
        "the test starts with a large WAL: {before}"
    );

    let firing = notification("firing", "CaretakerWalLarge", "fp1", "2026-01-01T00:00:00Z");
    let r = ct.post("/hooks/alertmanager", Some(TOKEN), &firing).await;
    assert_eq!(r.status(), 202);
    let reply: Value = r.json().await.expect("json");
    assert_eq!(reply["accepted"], 1);
    // The same episode again (a repeat, a retry, the other HA replica): recorded, not run.
    for _ in 0..3 {
        let reply: Value = ct
            .post("/hooks/alertmanager", Some(TOKEN), &firing)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(reply["duplicates"], 1);
        assert_eq!(reply["accepted"], 0);
    }
    let jobs = ct.wait_jobs_done(1).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["status"], "succeeded", "{:?}", jobs[0]);
    assert_eq!(jobs[0]["action"], "wal_checkpoint");
    ct.wait_for(
        "the WAL to shrink in /metrics",
        Duration::from_secs(10),
        |m| value(m, "caretaker_database_wal_size_bytes", &[]) == Some(0.0),
    )
    .await;

    // Alertmanager says the condition persists: counted as unresolved, not run again.
    let mut repeat = firing.clone();
    repeat["notification_reason"] = json!("repeat interval elapsed");
    let reply: Value = ct
        .post("/hooks/alertmanager", Some(TOKEN), &repeat)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (reply["accepted"].as_u64(), reply["duplicates"].as_u64()),
        (Some(0), Some(1))
    );

    // A new episode of the same alert within the cooldown is skipped.
    let later = notification("firing", "CaretakerWalLarge", "fp1", "2026-01-01T01:00:00Z");
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(TOKEN), &later)
            .await
            .status(),
        202
    );
    let jobs = ct.wait_jobs_done(2).await;
    assert_eq!(jobs[0]["status"], "skipped");
    assert_eq!(jobs[0]["reason"], "cooldown");

    // Resolution closes the remediated episode.
    let resolved = notification(
        "resolved",
        "CaretakerWalLarge",
        "fp1",
        "2026-01-01T00:00:00Z",
    );
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(TOKEN), &resolved)
            .await
            .status(),
        202
    );
    let m = ct.metrics().await;
    let runs = value(
        &m,
        "caretaker_action_runs_total",
        &[("action", "wal_checkpoint"), ("result", "success")],
    );
    assert_eq!(runs, Some(1.0));
    assert_eq!(
        value(
            &m,
            "caretaker_action_skipped_total",
            &[("action", "wal_checkpoint"), ("reason", "duplicate")]
        ),
        Some(4.0)
    );
    assert_eq!(
        value(
            &m,
            "caretaker_action_skipped_total",
            &[("action", "wal_checkpoint"), ("reason", "cooldown")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "caretaker_remediation_resolved_total",
            &[("action", "wal_checkpoint")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "caretaker_remediation_unresolved_total",
            &[("action", "wal_checkpoint")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "caretaker_remediation_time_to_resolve_seconds_count",
            &[]
        ),
        Some(1.0)
    );
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_unknown_and_malformed_alerts_change_nothing() {
    let dir = wal_database();
    let ct = Caretaker::start(dir, &responder_config("")).await;
    let other = notification("firing", "SomethingElse", "fp9", "2026-01-01T00:00:00Z");
    let reply: Value = ct
        .post("/hooks/alertmanager", Some(TOKEN), &other)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(reply["unmatched"], 1);
    let mut unknown = notification("firing", "CaretakerWalLarge", "fp8", "2026-01-01T00:00:00Z");
    unknown["alerts"][0]["labels"]["database"] = json!("../../etc/passwd");
    let reply: Value = ct
        .post("/hooks/alertmanager", Some(TOKEN), &unknown)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(reply["unknown_database"], 1);
    for bad in ["{", "[]", "{\"alerts\": 5}", "\u{0}"] {
        let r = ct
            .client
            .post(format!("{}/hooks/alertmanager", ct.base))
            .bearer_auth(TOKEN)
            .body(bad)
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), 400, "{bad:?}");
    }
    let huge = "x".repeat(2 << 20);
    // Its own client: the server closes a connection whose body it refused.
    let r = reqwest::Client::new()
        .post(format!("{}/hooks/alertmanager", ct.base))
        .bearer_auth(TOKEN)
        .body(huge)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 413);
    assert!(ct.jobs().await.is_empty());
    let m = ct.metrics().await;
    assert_eq!(
        value(
            &m,
            "caretaker_alerts_ignored_total",
            &[("reason", "unmatched")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "caretaker_alerts_ignored_total",
            &[("reason", "unknown_database")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "caretaker_webhook_requests_total", &[("code", "400")]),
        Some(4.0)
    );
    ct.stop().await;
}

mod runs;
