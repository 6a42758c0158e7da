//! Separate webhook and API credentials: each opens only its own endpoints,
//! and API runs leave the automatic budget (the breaker) alone.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Caretaker;
use crate::responder::{notification, responder_config, wal_database, TOKEN};

use super::{api, write_file, API_TOKEN};

// C: separate credentials; API runs leave the automatic budget alone.

fn separate_config(extra: &str) -> String {
    responder_config(extra).replace(
        "token_file = \"token\"",
        "token_file = \"token\"\napi_token_file = \"api-token\"\napi_max_runs = 3",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_credential_opens_only_its_own_endpoints_and_is_audited() {
    let dir = wal_database();
    write_file(&dir.path().join("api-token"), API_TOKEN);
    let ct = Caretaker::start(dir, &separate_config("")).await;
    let get = reqwest::Method::GET;
    assert_eq!(
        api(&ct, get.clone(), "/api/v1/audit", TOKEN).await.status(),
        401
    );
    assert_eq!(
        api(&ct, reqwest::Method::POST, "/api/v1/actions/analyze", TOKEN)
            .await
            .status(),
        401
    );
    assert_eq!(
        api(&ct, get.clone(), "/api/v1/actions", API_TOKEN)
            .await
            .status(),
        200
    );
    let hook = notification(
        "firing",
        "CaretakerWalLarge",
        "fp-cred",
        "2026-01-01T00:00:00Z",
    );
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(API_TOKEN), &hook)
            .await
            .status(),
        401
    );
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(TOKEN), &hook)
            .await
            .status(),
        202
    );
    let r = api(
        &ct,
        reqwest::Method::POST,
        "/api/v1/actions/analyze?wait=true",
        API_TOKEN,
    )
    .await;
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let audit: Value = api(&ct, get.clone(), "/api/v1/audit?limit=1000", API_TOKEN)
            .await
            .json()
            .await
            .expect("json");
        let events = audit["events"].as_array().cloned().unwrap_or_default();
        let ran = |action: &str, credential: &str| {
            events.iter().any(|e| {
                e["event"] == "ran" && e["action"] == action && e["credential"] == credential
            })
        };
        if ran("analyze", "api_token") && ran("wal_checkpoint", "webhook_token") {
            assert!(events
                .iter()
                .filter(|e| e["event"] == "received")
                .all(|e| e["credential"] == "webhook_token"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "audit lacks credentials: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_runs_neither_use_up_the_breaker_nor_escape_their_own_limit() {
    let dir = wal_database();
    write_file(&dir.path().join("api-token"), API_TOKEN);
    let config = separate_config("").replace(
        "[[database]]",
        "[responder]\nbreaker_max_runs = 2\n\n[[database]]",
    );
    let ct = Caretaker::start(dir, &config).await;
    let run = "/api/v1/actions/wal_checkpoint?wait=true";
    for i in 0..3 {
        let r = api(&ct, reqwest::Method::POST, run, API_TOKEN).await;
        assert_eq!(r.status(), 200, "run {i}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["job"]["status"], "succeeded", "{body}");
    }
    let r = api(&ct, reqwest::Method::POST, run, API_TOKEN).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 0 && retry <= 3600, "{retry}");
    // The webhook's job for the same action and database still runs: three
    // runs by hand are past breaker_max_runs, and within the rule's cooldown.
    let hook = notification(
        "firing",
        "CaretakerWalLarge",
        "fp-budget",
        "2026-01-01T00:00:00Z",
    );
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(TOKEN), &hook)
            .await
            .status(),
        202
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: Value = api(
            &ct,
            reqwest::Method::GET,
            "/api/v1/actions?limit=10",
            API_TOKEN,
        )
        .await
        .json()
        .await
        .expect("json");
        let jobs = body["jobs"].as_array().cloned().unwrap_or_default();
        if let Some(job) = jobs.iter().find(|j| j["source"] == "webhook") {
            if job["status"] != "queued" && job["status"] != "running" {
                assert_eq!(job["status"], "succeeded", "{job}");
                break;
            }
        }
        assert!(Instant::now() < deadline, "{jobs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ct.stop().await;
}
