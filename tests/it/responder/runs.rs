//! Actions run by hand through the API and by schedules, through the same
//! engine; a slow notification endpoint never delays them; backups the
//! responder takes and verifies show in `/metrics`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_run_by_hand_through_the_api() {
    let dir = wal_database();
    let ct = Caretaker::start(dir, &responder_config("")).await;
    let url = |q: &str| format!("{}/api/v1/actions/{q}", ct.base);
    let r = ct
        .client
        .post(url("integrity_check?wait=true"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["job"]["status"], "succeeded", "{body}");
    assert_eq!(body["job"]["outcome"]["figures"]["integrity_ok"], 1.0);
    let started = body["job"]["started_at"].as_f64().expect("started");
    ct.wait_for(
        "the check's result in /metrics",
        Duration::from_secs(10),
        |m| {
            value(
                m,
                "caretaker_database_integrity_check_timestamp_seconds",
                &[],
            )
            .is_some_and(|t| t >= started)
        },
    )
    .await;

    let r = ct
        .client
        .post(url("vacuum?wait=true"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST");
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["job"]["status"], "skipped",
        "vacuum is off until configured: {body}"
    );
    assert_eq!(body["job"]["reason"], "disabled");

    let r = ct
        .client
        .post(url("wal_checkpoint?wait=true&dry_run=true"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["job"]["status"], "succeeded");
    assert!(
        value(
            &ct.metrics().await,
            "caretaker_database_wal_size_bytes",
            &[]
        )
        .expect("wal")
            > 0.0,
        "dry run changed nothing"
    );

    assert_eq!(
        ct.client
            .post(url("rm_rf"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("POST")
            .status(),
        404
    );
    assert_eq!(
        ct.client
            .post(url("analyze?database=nope"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("POST")
            .status(),
        400
    );
    let events = ct.audit_events().await;
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "skipped" && e["reason"] == "disabled"),
        "{events:?}"
    );
    assert!(events.iter().filter(|e| e["event"] == "ran").count() >= 2);
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_run_through_the_same_engine() {
    let dir = wal_database();
    // Every second (cron with seconds), so the test sees firings quickly.
    let extra = "[[schedule]]\nname = \"often\"\ncron = \"* * * * * *\"\nactions = [\"analyze\"]\n";
    let ct = Caretaker::start(dir, &responder_config(extra)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let jobs = loop {
        let jobs = ct.jobs().await;
        let done: Vec<&Value> = jobs
            .iter()
            .filter(|j| {
                j["source"] == "schedule" && j["status"] != "queued" && j["status"] != "running"
            })
            .collect();
        if done.len() >= 2 {
            break jobs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scheduled runs: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let scheduled: Vec<&Value> = jobs.iter().filter(|j| j["source"] == "schedule").collect();
    assert!(scheduled
        .iter()
        .all(|j| j["action"] == "analyze" && j["rule"] == "schedule:often"));
    assert!(
        scheduled.iter().any(|j| j["status"] == "succeeded"),
        "{scheduled:?}"
    );
    let keys: std::collections::BTreeSet<&str> =
        scheduled.iter().filter_map(|j| j["key"].as_str()).collect();
    assert_eq!(keys.len(), scheduled.len(), "one job per firing");
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_notification_endpoint_never_delays_actions() {
    use std::sync::Arc;
    use tokio::sync::{mpsc, Notify};
    // A chat endpoint that holds every request until released, then records it.
    let release = Arc::new(Notify::new());
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let app = {
        let (release, tx) = (release.clone(), tx.clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let (release, tx) = (release.clone(), tx.clone());
                async move {
                    release.notified().await;
                    let _ = tx.send(body);
                    "ok"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = wal_database();
    let ct = Caretaker::start(
        dir,
        &responder_config(&format!("[responder]\nnotify_url = \"{hook}\"\n")),
    )
    .await;
    let r = ct
        .client
        .post(format!(
            "{}/api/v1/actions/wal_checkpoint?wait=true",
            ct.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST");
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["job"]["status"], "succeeded",
        "the action finished while the notification was held"
    );
    release.notify_one();
    let text = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("notified")
        .expect("message");
    assert!(
        text.contains("wal_checkpoint on memory succeeded"),
        "{text}"
    );
    ct.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_taken_and_verified_by_the_responder_show_in_metrics() {
    let dir = wal_database();
    let extra = "";
    let config = responder_config(extra).replace(
        "path = \"memory.db\"\n",
        "path = \"memory.db\"\n[database.backup]\ndir = \"backups\"\n",
    );
    let ct = Caretaker::start(dir, &config).await;
    let run = |action: &'static str| {
        let (client, base) = (ct.client.clone(), ct.base.clone());
        async move {
            let r = client
                .post(format!("{base}/api/v1/actions/{action}?wait=true"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("POST");
            r.json::<Value>().await.expect("json")
        }
    };
    let body = run("backup").await;
    assert_eq!(body["job"]["status"], "succeeded", "{body}");
    ct.wait_for("the new backup in /metrics", Duration::from_secs(10), |m| {
        value(m, "caretaker_backup_files", &[]) == Some(1.0)
    })
    .await;
    let body = run("verify_backups").await;
    assert_eq!(body["job"]["status"], "succeeded", "{body}");
    ct.wait_for("a successful verification", Duration::from_secs(10), |m| {
        value(m, "caretaker_backup_verification_ok", &[]) == Some(1.0)
    })
    .await;

    // Flip a byte in the backup: verification fails, is published, and deletes nothing.
    let backups = ct.dir.path().join("backups");
    let file = std::fs::read_dir(&backups)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "zst"))
        .expect("a backup");
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&file, &bytes).expect("corrupt");
    let body = run("verify_backups").await;
    assert_eq!(body["job"]["status"], "failed", "{body}");
    ct.wait_for("the failed verification", Duration::from_secs(10), |m| {
        value(m, "caretaker_backup_verification_ok", &[]) == Some(0.0)
    })
    .await;
    assert!(file.exists(), "a bad backup is reported, never deleted");
    ct.stop().await;
}
