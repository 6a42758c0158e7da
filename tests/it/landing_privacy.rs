//! The landing page is open to anyone who reaches the port (docs/security.md):
//! it shows health and counts, never the job history, which needs the token.

use serde_json::Value;

use crate::common::Caretaker;
use crate::responder::{responder_config, wal_database, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landing_page_shows_no_job_to_a_caller_without_the_token() {
    let ct = Caretaker::start(wal_database(), &responder_config("")).await;
    let r = ct
        .client
        .post(format!(
            "{}/api/v1/actions/wal_checkpoint?database=memory&wait=true",
            ct.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    let job = &body["job"];
    assert_eq!(job["status"], "succeeded", "{body}");
    let summary = job["outcome"]["summary"].as_str().unwrap_or_default();
    assert!(!summary.is_empty(), "the job has a summary: {body}");

    let page = ct.get("/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    // Health stays public.
    assert!(html.contains("data-database=\"memory\""), "{html}");
    // No trace of the job: not its row, action, status or summary.
    for secret in ["class=\"job\"", "wal_checkpoint", "succeeded", summary] {
        assert!(
            !html.contains(secret),
            "GET / without a token shows {secret:?}:\n{html}"
        );
    }
    // The history is one link away, behind the token.
    assert!(html.contains("href=\"/api/v1/actions\""), "{html}");
    let api = ct.get("/api/v1/actions").await;
    assert_eq!(api.status(), 401, "the job list needs the token");
    ct.stop().await;
}
