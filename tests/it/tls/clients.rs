//! Debian's Prometheus scrapes caretaker over TLS with basic auth, and its
//! Alertmanager posts the webhook over TLS with the bearer token: the
//! configuration an operator writes for a fleet on HTTPS (docs/security.md).

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use super::{client, tls_config, users_yaml, write_web_config, Pki, PASSWORD, USER};
use crate::common::{value, Caretaker};
use crate::prometheus::{api, free_port, poll, start_prometheus, Server};
use crate::responder::wal_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_over_tls_with_basic_auth_and_a_wrong_password_is_down() {
    let dir = wal_database();
    let pki = Pki::new(dir.path());
    write_web_config(dir.path(), &pki, "server", "server", "", &users_yaml());
    std::fs::write(dir.path().join("password"), PASSWORD).unwrap();
    std::fs::write(dir.path().join("wrong"), "wrong horse").unwrap();
    let ct = Caretaker::start_with(
        dir,
        &tls_config(),
        "https",
        client(&pki, "ca", Some((USER, PASSWORD))),
    )
    .await;
    let root = ct.dir.path();
    let target = ct.base.trim_start_matches("https://").to_string();
    let job = |name: &str, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    basic_auth:\n      username: {USER}\n      password_file: {pw}\n    static_configs:\n      - targets: ['{target}']\n",
            ca = pki.path("ca.crt").display(),
            pw = root.join(password).display(),
        )
    };
    let prom_dir = tempfile::tempdir().unwrap();
    let prometheus = start_prometheus(
        prom_dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n{}{}",
            job("caretaker", "password"),
            job("intruder", "wrong")
        ),
    );
    let http = reqwest::Client::new();
    let targets = poll("both targets scraped", Duration::from_secs(60), || async {
        let data = api(&http, &prometheus.base, "/api/v1/targets").await?;
        let active = data["activeTargets"].as_array()?.clone();
        let scraped = active.len() == 2 && active.iter().all(|t| t["health"] != "unknown");
        scraped.then_some(active)
    })
    .await;
    for t in &targets {
        let (job, health) = (
            t["labels"]["job"].as_str().unwrap(),
            t["health"].as_str().unwrap(),
        );
        match job {
            "caretaker" => assert_eq!(health, "up", "{t}"),
            _ => {
                assert_eq!(health, "down", "{t}");
                assert!(t["lastError"].as_str().unwrap().contains("401"), "{t}");
            }
        }
    }
    // The scraped series are caretaker's own.
    let data = poll(
        "caretaker_build_info in Prometheus",
        Duration::from_secs(30),
        || async {
            let data = api(
                &http,
                &prometheus.base,
                "/api/v1/query?query=caretaker_build_info",
            )
            .await?;
            (!data["result"].as_array()?.is_empty()).then_some(data)
        },
    )
    .await;
    assert_eq!(data["result"][0]["metric"]["job"], "caretaker");
    ct.stop().await;
}

fn start_alertmanager(
    dir: &std::path::Path,
    url: &str,
    ca: &std::path::Path,
    token: &std::path::Path,
) -> Server {
    let config = format!(
        "route:\n  receiver: caretaker\n  group_by: [alertname, database]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: caretaker\n    webhook_configs:\n      - url: {url}/hooks/alertmanager\n        http_config:\n          tls_config:\n            ca_file: {ca}\n          authorization:\n            credentials_file: {token}\n",
        ca = ca.display(),
        token = token.display(),
    );
    std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("alertmanager.log")).unwrap();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!(
            "--config.file={}",
            dir.join("alertmanager.yml").display()
        ))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_posts_its_webhook_over_tls_with_the_bearer_token() {
    let dir = wal_database();
    let pki = Pki::new(dir.path());
    write_web_config(dir.path(), &pki, "server", "server", "", "");
    let ct = Caretaker::start_with(dir, &tls_config(), "https", client(&pki, "ca", None)).await;
    let am_dir = tempfile::tempdir().unwrap();
    let am = start_alertmanager(
        am_dir.path(),
        &ct.base,
        &pki.path("ca.crt"),
        &ct.dir.path().join("token"),
    );
    let http = reqwest::Client::new();
    poll(
        "alertmanager to answer",
        Duration::from_secs(30),
        || async {
            let r = http.get(format!("{}/-/ready", am.base)).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
    let started =
        humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(60)).to_string();
    let out = Command::new("amtool")
        .args([
            "alert",
            "add",
            "CaretakerWalLarge",
            "database=memory",
            "severity=warning",
        ])
        .arg(format!("--start={started}"))
        .arg(format!("--alertmanager.url={}", am.base))
        .output()
        .expect("amtool");
    assert!(
        out.status.success(),
        "amtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ct.wait_for("the delivery over TLS", Duration::from_secs(30), |m| {
        value(m, "caretaker_webhook_requests_total", &[("code", "202")]).unwrap_or(0.0) >= 1.0
    })
    .await;
    let jobs = ct.wait_jobs_done(1).await;
    assert_eq!(jobs[0]["action"], "wal_checkpoint", "{jobs:?}");
    ct.stop().await;
}
