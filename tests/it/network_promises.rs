//! The network and credential promises: tokens checked before bodies are
//! read and refused reloads that keep the old token, separate webhook and API
//! credentials, API runs that neither use up nor skip the breaker, bounded
//! connections and header read time, `/metrics` negotiation, and a state
//! database that stops growing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{value, Caretaker};
use crate::responder::{notification, responder_config, wal_database, TOKEN};

const API_TOKEN: &str = "api-token-fedcba9876543210";

fn host_port(ct: &Caretaker) -> String {
    ct.base.trim_start_matches("http://").to_string()
}

/// Writes `bytes` on a new connection and reads until EOF or `deadline`.
fn exchange(addr: &str, bytes: &[u8], deadline: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(bytes).expect("write");
    read_until_eof(&mut s, deadline)
}

/// Everything the server sends until it closes (true) or `deadline` passes (false).
fn read_until_eof(s: &mut TcpStream, deadline: Duration) -> (String, bool) {
    let until = Instant::now() + deadline;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&got).into_owned(), false);
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (String::from_utf8_lossy(&got).into_owned(), false)
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
}

fn write_file(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

// A: reloads and check-config refuse tokens the daemon cannot use.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_leaves_the_token_too_short_is_refused_and_keeps_the_old_token() {
    let ct = Caretaker::start(wal_database(), &responder_config("")).await;
    let ok = json!({"alerts": []});
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(TOKEN), &ok)
            .await
            .status(),
        202
    );
    write_file(&ct.dir.path().join("token"), "short\n");
    // Touch the configuration: the watcher reloads it.
    let text = std::fs::read_to_string(&ct.config_path).expect("config");
    std::fs::write(&ct.config_path, format!("{text}\n# touched\n")).expect("touch");
    ct.wait_for("the refused reload", Duration::from_secs(10), |m| {
        value(m, "caretaker_config_last_reload_successful", &[]) == Some(0.0)
    })
    .await;
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(TOKEN), &ok)
            .await
            .status(),
        202,
        "the old token stays in force"
    );
    // A usable new token is taken; then a missing file is refused again.
    let new_token = "new-token-0123456789abcdef";
    write_file(&ct.dir.path().join("token"), new_token);
    std::fs::write(&ct.config_path, format!("{text}\n# touched twice\n")).expect("touch");
    ct.wait_for("the accepted reload", Duration::from_secs(10), |m| {
        value(m, "caretaker_config_last_reload_successful", &[]) == Some(1.0)
    })
    .await;
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(TOKEN), &ok)
            .await
            .status(),
        401
    );
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(new_token), &ok)
            .await
            .status(),
        202
    );
    std::fs::remove_file(ct.dir.path().join("token")).expect("rm");
    std::fs::write(&ct.config_path, format!("{text}\n# touched thrice\n")).expect("touch");
    ct.wait_for("the refused reload", Duration::from_secs(10), |m| {
        value(m, "caretaker_config_last_reload_successful", &[]) == Some(0.0)
    })
    .await;
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(new_token), &ok)
            .await
            .status(),
        202
    );
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_token_is_a_check_config_error_and_the_webhook_says_why() {
    let dir = wal_database();
    write_file(&dir.path().join("token"), "short\n");
    let config = dir.path().join("caretaker.toml");
    std::fs::write(&config, responder_config("")).expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .arg("check-config")
        .arg(format!("--config.file={}", config.display()))
        .output()
        .expect("check-config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("shorter than 16"), "{stderr}");
    assert!(
        !stderr.contains("short\n"),
        "the token itself is never printed"
    );

    let ct = Caretaker::start(dir, &responder_config("")).await;
    let r = ct
        .post("/hooks/alertmanager", Some("short"), &json!({}))
        .await;
    assert_eq!(r.status(), 403);
    let body = r.text().await.expect("body");
    assert!(body.contains("shorter than 16"), "{body}");
    assert!(!body.contains("no token configured"), "{body}");
    let m = ct.metrics().await;
    assert_eq!(
        value(
            &m,
            "caretaker_auth_failures_total",
            &[("reason", "token_too_short")]
        ),
        Some(1.0)
    );
    ct.stop().await;
}

#[test]
fn check_config_warns_while_one_token_opens_both() {
    let dir = wal_database();
    let config = dir.path().join("caretaker.toml");
    std::fs::write(&config, responder_config("")).expect("config");
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_caretaker"))
            .arg("check-config")
            .arg(format!("--config.file={}", config.display()))
            .output()
            .expect("check-config")
    };
    let out = check();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("web.api_token_file"), "{stderr}");
    write_file(&dir.path().join("api-token"), API_TOKEN);
    let text = responder_config("").replace(
        "token_file = \"token\"",
        "token_file = \"token\"\napi_token_file = \"api-token\"",
    );
    std::fs::write(&config, text).expect("config");
    let out = check();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
}

// B: the bearer scheme, host names, and the text format.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_name_is_case_insensitive() {
    let ct = Caretaker::start(wal_database(), &responder_config("")).await;
    for scheme in ["BEARER", "bearer", "Bearer"] {
        let r = ct
            .client
            .get(format!("{}/api/v1/audit", ct.base))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{scheme}");
    }
    ct.stop().await;
}

#[test]
fn listen_addresses_may_name_a_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("caretaker.toml");
    let cfg =
        caretaker::config::Config::parse(&path, "[web]\nlisten_address = \"localhost:10210\"\n")
            .expect("localhost is accepted");
    assert!(cfg.web.listen_address.ip().is_loopback());
    assert_eq!(cfg.web.listen_address.port(), 10210);
    let err = caretaker::config::Config::parse(
        &path,
        "[web]\nlisten_address = \"no-such-host.invalid:1\"\n",
    )
    .expect_err("an unknown host is an error");
    assert!(err.to_string().contains("listen_address"), "{err}");
    use clap::Parser;
    let cli = caretaker::cli::Cli::try_parse_from([
        "caretaker",
        "serve",
        "--config.file=x",
        "--web.listen-address=localhost:0",
    ])
    .expect("the flag takes host names too");
    match cli.command {
        caretaker::cli::Command::Serve { listen_address, .. } => {
            assert!(listen_address.expect("address").ip().is_loopback())
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_the_text_format_pass_promtool() {
    let ct = Caretaker::start(wal_database(), &responder_config("")).await;
    // Some responder counters, so counters and histograms are in the output.
    let n = notification(
        "firing",
        "CaretakerWalLarge",
        "fp-text",
        "2026-01-01T00:00:00Z",
    );
    assert_eq!(
        ct.post("/hooks/alertmanager", Some(TOKEN), &n)
            .await
            .status(),
        202
    );
    ct.wait_jobs_done(1).await;
    let r = ct
        .client
        .get(format!("{}/metrics", ct.base))
        .header("accept", "text/plain;version=0.0.4")
        .send()
        .await
        .expect("GET");
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = r.text().await.expect("body");
    assert!(!body.contains("# EOF"));
    assert!(body.contains("caretaker_action_runs_total{"), "{body}");
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Prometheus's own Accept header still gets OpenMetrics.
    let r = ct
        .client
        .get(format!("{}/metrics", ct.base))
        .header("accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
        .send()
        .await
        .expect("GET");
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("application/openmetrics-text"));
    ct.stop().await;
}

// C: separate credentials; API runs leave the automatic budget alone.

fn separate_config(extra: &str) -> String {
    responder_config(extra).replace(
        "token_file = \"token\"",
        "token_file = \"token\"\napi_token_file = \"api-token\"\napi_max_runs = 3",
    )
}

async fn api(
    ct: &Caretaker,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::Response {
    ct.client
        .request(method, format!("{}{path}", ct.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
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
