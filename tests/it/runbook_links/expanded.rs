//! The real Prometheus (Debian's 2.42) expands each shipped alert's
//! `runbook_url` with the labels Prometheus gives the scraped caretaker and
//! with its external labels, and the caretaker the link names serves the
//! page with that anchor. Debian's promtool 2.42 takes no `external_labels`
//! in unit-test files, so the overrides are checked here, on a running
//! Prometheus; the default form is also asserted by alerts/tests/*.test.yml.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{shipped_alerts, Alert, INSTALLED};
use crate::common::Caretaker;
use crate::prometheus::{api, free_port, poll, start_prometheus_with, Server};
use crate::responder::{responder_config, wal_database};

/// A rules file with one alert per shipped alert, each with the shipped
/// `runbook_url` as written and an expression that holds now: the scraped
/// caretaker's `up` series (so the labels are those Prometheus gives the
/// target), or for an `absent(...)` alert a series that exists nowhere.
fn link_rules(alerts: &[Alert]) -> String {
    let mut out = String::from("groups:\n  - name: runbook_links\n    rules:\n");
    for alert in alerts {
        let expr = if alert.absent {
            r#"absent(runbook_links_no_such_series{job="caretaker"})"#
        } else {
            r#"up{job="caretaker"}"#
        };
        let url = alert
            .runbook_url
            .as_deref()
            .expect("checked by the form test");
        out.push_str(&format!(
            "      - alert: {}\n        expr: '{expr}'\n        annotations:\n          runbook_url: '{}'\n",
            alert.name,
            url.replace('\'', "''")
        ));
    }
    out
}

/// Prometheus scraping `target` as job `caretaker`, with the link rules,
/// `external_labels` (YAML lines under `global.external_labels`) and
/// `alerting` (YAML lines under `alerting:`, or none).
fn prometheus(
    dir: &Path,
    target: &str,
    external_labels: &str,
    alerting: &str,
    alerts: &[Alert],
) -> Server {
    std::fs::write(dir.join("links.rules.yml"), link_rules(alerts)).expect("rules");
    let labels = if external_labels.is_empty() {
        String::new()
    } else {
        format!("  external_labels:\n{external_labels}")
    };
    let alerting = if alerting.is_empty() {
        String::new()
    } else {
        format!("alerting:\n{alerting}")
    };
    // Alerts sent before Prometheus has found its Alertmanager (a few
    // seconds) are sent again after this delay, a minute by default.
    start_prometheus_with(
        dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{labels}{alerting}rule_files:\n  - links.rules.yml\nscrape_configs:\n  - job_name: caretaker\n    static_configs:\n      - targets: ['{target}']\n"
        ),
        &["--rules.alert.resend-delay=1s"],
    )
}

/// Debian's Alertmanager, keeping what it receives and sending nothing on.
fn alertmanager(dir: &Path) -> Server {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: keep\nreceivers:\n  - name: keep\n",
    )
    .expect("config");
    let port = free_port();
    let log = std::fs::File::create(dir.join("alertmanager.log")).expect("log");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am").display()))
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

/// Each alert's `runbook_url` as Prometheus expanded it, once every alert fires.
async fn expanded(
    client: &reqwest::Client,
    prom: &Server,
    count: usize,
) -> BTreeMap<String, String> {
    poll(
        "every link alert firing in Prometheus",
        Duration::from_secs(60),
        || async {
            let data = api(client, &prom.base, "/api/v1/alerts").await?;
            let urls: BTreeMap<String, String> = data["alerts"]
                .as_array()?
                .iter()
                .filter(|a| a["state"] == "firing")
                .filter_map(|a| {
                    Some((
                        a["labels"]["alertname"].as_str()?.to_string(),
                        a["annotations"]["runbook_url"].as_str()?.to_string(),
                    ))
                })
                .collect();
            (urls.len() == count).then_some(urls)
        },
    )
    .await
}

/// GETs `url` (its fragment stays on this side, as in a browser) and checks
/// that the page is the runbooks with an element of that id.
async fn opens_its_section(client: &reqwest::Client, alert: &str, url: &str) {
    let (page, anchor) = url
        .split_once('#')
        .unwrap_or_else(|| panic!("{alert}: {url} has no anchor"));
    assert_eq!(anchor, alert.to_lowercase(), "{alert}: {url}");
    let response = client
        .get(page)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{alert}: GET {url}: {e}"));
    assert_eq!(response.status(), 200, "{alert}: GET {url}");
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8",
        "{alert}: {url}"
    );
    let body = response.text().await.expect("body");
    assert!(
        body.contains(&format!(" id=\"{anchor}\"")),
        "{alert}: {page} has no id {anchor}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_link_as_prometheus_expands_it_opens_its_section() {
    let alerts = shipped_alerts();
    // The caretaker Prometheus scrapes, and another one that a team could
    // name in caretaker_runbook_base (any caretaker serves the same page).
    let ct = Caretaker::start(wal_database(), &responder_config("")).await;
    let other = Caretaker::start(wal_database(), &responder_config("")).await;
    let target = ct.base.trim_start_matches("http://").to_string();
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let published = format!("{}/runbooks", other.base);
    let client = reqwest::Client::new();
    let plain = prometheus(dirs[0].path(), &target, "", "", &alerts);
    // As config/prometheus.yml does: the runbook labels serve the templates
    // only, so they are dropped from the alerts sent to Alertmanager.
    let am = alertmanager(dirs[1].path());
    let base = prometheus(
        dirs[1].path(),
        &target,
        &format!("    caretaker_runbook_base: '{published}'\n    site: one\n"),
        &format!(
            "  alert_relabel_configs:\n    - action: labeldrop\n      regex: caretaker_runbook_.*\n  alertmanagers:\n    - static_configs:\n        - targets: ['{}']\n",
            am.base.trim_start_matches("http://")
        ),
        &alerts,
    );
    let tls = prometheus(
        dirs[2].path(),
        &target,
        "    caretaker_runbook_scheme: https\n",
        "",
        &alerts,
    );

    // By default: the caretaker that raised the alert, over http.
    let urls = expanded(&client, &plain, alerts.len()).await;
    for alert in &alerts {
        let url = &urls[&alert.name];
        let anchor = alert.name.to_lowercase();
        if alert.absent {
            assert_eq!(url, &format!("{INSTALLED}#{anchor}"), "{}", alert.name);
        } else {
            assert_eq!(
                url,
                &format!("{}/runbooks#{anchor}", ct.base),
                "{}",
                alert.name
            );
            opens_its_section(&client, &alert.name, url).await;
        }
    }

    // caretaker_runbook_base replaces the whole page URL, for every alert.
    let urls = expanded(&client, &base, alerts.len()).await;
    for alert in &alerts {
        let url = &urls[&alert.name];
        assert_eq!(
            url,
            &format!("{published}#{}", alert.name.to_lowercase()),
            "{}",
            alert.name
        );
        opens_its_section(&client, &alert.name, url).await;
    }
    // Alertmanager gets the expanded links and the other external labels,
    // not the runbook labels themselves.
    let received: Vec<Value> = poll(
        "every link alert in Alertmanager",
        Duration::from_secs(60),
        || async {
            let response = client
                .get(format!("{}/api/v2/alerts", am.base))
                .send()
                .await
                .ok()?;
            let list: Vec<Value> = response.json().await.ok()?;
            (list.len() == alerts.len()).then_some(list)
        },
    )
    .await;
    for alert in &received {
        let name = alert["labels"]["alertname"].as_str().expect("alertname");
        let labels = alert["labels"].as_object().expect("labels");
        assert_eq!(
            labels.get("site"),
            Some(&Value::from("one")),
            "{name}: {alert}"
        );
        assert!(
            !labels.keys().any(|k| k.starts_with("caretaker_runbook_")),
            "{name}: {alert}"
        );
        assert_eq!(
            alert["annotations"]["runbook_url"],
            format!("{published}#{}", name.to_lowercase()),
            "{name}"
        );
    }

    // caretaker_runbook_scheme: the same caretaker, over https.
    let urls = expanded(&client, &tls, alerts.len()).await;
    for alert in &alerts {
        let anchor = alert.name.to_lowercase();
        let expected = if alert.absent {
            format!("{INSTALLED}#{anchor}")
        } else {
            format!("https://{target}/runbooks#{anchor}")
        };
        assert_eq!(urls[&alert.name], expected, "{}", alert.name);
    }
    drop((plain, base, tls, am));
    ct.stop().await;
    other.stop().await;
}
