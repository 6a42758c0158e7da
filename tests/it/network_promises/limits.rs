//! No body is read before the token, header time and connections are
//! bounded, and the state database keeps only its retention.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{value, Caretaker};
use crate::responder::{responder_config, wal_database, TOKEN};

use super::{api, exchange, host_port, read_until_eof};

// D: no body before the token, bounded header time and connections.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_post_is_refused_before_its_body_arrives() {
    let ct = Caretaker::start(wal_database(), &responder_config("")).await;
    let addr = host_port(&ct);
    let head = "POST /hooks/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n";
    let (reply, _) = tokio::task::spawn_blocking(move || {
        exchange(&addr, head.as_bytes(), Duration::from_secs(3))
    })
    .await
    .expect("join");
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply:?}");
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_header_is_closed_within_the_header_read_timeout() {
    let config = responder_config("").replace("[web]", "[web]\nheader_read_timeout = \"1s\"");
    let ct = Caretaker::start(wal_database(), &config).await;
    let addr = host_port(&ct);
    let started = Instant::now();
    let (_, closed) = tokio::task::spawn_blocking(move || {
        exchange(
            &addr,
            b"GET /-/healthy HTTP/1.1\r\nHo",
            Duration::from_secs(5),
        )
    })
    .await
    .expect("join");
    assert!(closed, "the server kept a half-sent request open");
    assert!(started.elapsed() < Duration::from_secs(5));
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_for_a_free_one() {
    let dir = wal_database();
    let config = responder_config("").replace(
        "[web]",
        "[web]\nmax_connections = 2\nheader_read_timeout = \"30s\"",
    );
    let path = dir.path().join("caretaker.toml");
    std::fs::write(&path, config).expect("config");
    let cfg = caretaker::config::Config::load(&path).expect("valid");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(caretaker::daemon::run(cfg, listener, shutdown.clone()));
    let outcome = tokio::task::spawn_blocking(move || {
        // Two idle connections take both places (the backlog keeps their order).
        let first = TcpStream::connect(&addr).expect("connect");
        let _second = TcpStream::connect(&addr).expect("connect");
        let mut third = TcpStream::connect(&addr).expect("connect");
        third
            .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        let (early, _) = read_until_eof(&mut third, Duration::from_millis(500));
        drop(first);
        let (late, closed) = read_until_eof(&mut third, Duration::from_secs(10));
        (early, late, closed)
    })
    .await
    .expect("join");
    let (early, late, closed) = outcome;
    assert_eq!(early, "", "a third connection was served beyond the limit");
    assert!(late.starts_with("HTTP/1.1 200"), "{late:?}");
    assert!(closed);
    shutdown.cancel();
    task.await.expect("join").expect("ran");
}

// E: history retention and bounded rows.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_older_than_the_retention_is_deleted_at_startup() {
    use caretaker::responder::state::{AuditEvent, NewJob, StateStore};
    let dir = wal_database();
    let state = dir.path().join("state/caretaker-state.db");
    let now = caretaker::metrics::unix_seconds(std::time::SystemTime::now());
    let old = now - 3.0 * 86400.0;
    {
        let (store, _) = StateStore::open(&state, now).expect("open");
        let job = |key: &str| NewJob {
            key: key.into(),
            source: caretaker::responder::job::JobSource::Api,
            action: "analyze".into(),
            database: "memory".into(),
            ..Default::default()
        };
        let event = |at: f64, detail: &str| AuditEvent {
            at,
            event: caretaker::responder::job::AuditKind::Ran,
            detail: Some(detail.into()),
            ..Default::default()
        };
        let ids = store
            .record(&[job("old")], &[event(old, "old event")], old)
            .expect("old");
        store
            .record(&[job("new")], &[event(now, "new event")], now)
            .expect("new");
        if let Some(caretaker::responder::state::Recorded::New(id)) = ids.first() {
            store
                .finish(
                    *id,
                    caretaker::responder::job::JobStatus::Succeeded,
                    None,
                    None,
                    None,
                    old,
                )
                .expect("finish");
        }
        // A job still queued is kept whatever its age.
        store
            .record(&[job("old-queued")], &[], old)
            .expect("queued");
    }
    let config = responder_config("").replace(
        "[[database]]",
        "[responder]\nhistory_retention = \"1d\"\n\n[[database]]",
    );
    let ct = Caretaker::start(dir, &config).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jobs: Value = api(&ct, reqwest::Method::GET, "/api/v1/actions", TOKEN)
            .await
            .json()
            .await
            .expect("json");
        let keys: Vec<&str> = jobs["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter_map(|j| j["key"].as_str())
            .collect();
        let audit: Value = api(&ct, reqwest::Method::GET, "/api/v1/audit", TOKEN)
            .await
            .json()
            .await
            .expect("json");
        let details: Vec<&str> = audit["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["detail"].as_str())
            .collect();
        if !keys.contains(&"old") && !details.contains(&"old event") {
            assert!(
                keys.contains(&"new") && keys.contains(&"old-queued"),
                "{keys:?}"
            );
            assert!(details.contains(&"new event"), "{details:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old history kept: {keys:?} {details:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_of_unmatched_alerts_barely_grows_the_state_database() {
    let dir = wal_database();
    let state = dir.path().join("state/caretaker-state.db");
    let ct = Caretaker::start(dir, &responder_config("")).await;
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = state.with_extension("db-wal");
    let before = size(&state) + size(&wal);
    let mut sent = 0;
    for n in 0..10 {
        let alerts: Vec<Value> = (0..100)
            .map(|i| {
                json!({
                    "status": "firing",
                    "labels": {"alertname": format!("Noise{n}-{i}-{}", "x".repeat(400)), "team": "y".repeat(300)},
                    "annotations": {}, "startsAt": format!("2026-01-01T00:00:{i:02}Z"),
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                    "fingerprint": format!("{n}-{i}-{}", "f".repeat(300))
                })
            })
            .collect();
        let body = json!({"version": "4", "status": "firing", "alerts": alerts});
        sent += body.to_string().len();
        let r = ct.post("/hooks/alertmanager", Some(TOKEN), &body).await;
        assert_eq!(r.status(), 202);
    }
    assert!(sent >= 1_000_000, "{sent}");
    let m = ct.metrics().await;
    assert_eq!(
        value(
            &m,
            "caretaker_alerts_ignored_total",
            &[("reason", "unmatched")]
        ),
        Some(1000.0)
    );
    // Keep the folder past the stop, which checkpoints the WAL into the main file.
    let mut ct = ct;
    let kept = std::mem::replace(&mut ct.dir, tempfile::tempdir().expect("tempdir"));
    let state_dir = kept.path().join("state");
    ct.stop().await;
    let after = size(&state_dir.join("caretaker-state.db"))
        + size(&state_dir.join("caretaker-state.db-wal"));
    let grown = after.saturating_sub(before);
    eprintln!("state database: {before} bytes before, {after} after");
    assert!(
        grown < 100_000,
        "the state database grew by {grown} bytes for {sent} sent"
    );
}
