//! The network and credential promises: tokens checked before bodies are
//! read and refused reloads that keep the old token, separate webhook and API
//! credentials, API runs that neither use up nor skip the breaker, bounded
//! connections and header read time, `/metrics` negotiation, and a state
//! database that stops growing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

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

mod credentials;
mod limits;
