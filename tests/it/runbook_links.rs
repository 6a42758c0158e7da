//! Every shipped alert's `runbook_url` opens its section: the real Prometheus
//! (Debian's 2.42) expands each rule's annotation with the alert's labels and
//! its external labels, and the caretaker the link names serves the page with
//! that anchor. Debian's promtool 2.42 takes no `external_labels` in unit-test
//! files, so the overrides are checked here, on a running Prometheus; the
//! default form is also asserted by alerts/tests/*.test.yml.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::common::Caretaker;
use crate::prometheus::{api, poll, start_prometheus, Server};
use crate::responder::{responder_config, wal_database, TOKEN};
use crate::runbook_steps::repo_file;

/// The one runbook link of every alert, before `#<anchor>` (the comment at
/// the top of alerts/caretaker.rules.yml explains it).
const FORM: &str = concat!(
    "{{ with $externalLabels.caretaker_runbook_base }}{{ . }}{{ else }}",
    "{{ with $labels.instance }}",
    "{{ or $externalLabels.caretaker_runbook_scheme \"http\" }}://{{ . }}/runbooks",
    "{{ else }}file:///usr/share/doc/caretaker/runbooks.md{{ end }}{{ end }}"
);

/// Where the Debian package puts docs/runbooks.md (`[package.metadata.deb]`).
const INSTALLED: &str = "file:///usr/share/doc/caretaker/runbooks.md";

/// One alert of alerts/*.rules.yml, as far as its link is concerned.
#[derive(Debug)]
struct Alert {
    name: String,
    /// The annotation as written (single quotes removed), if it is one line.
    runbook_url: Option<String>,
    /// Its expression is `absent(...)`: the alert has no instance label.
    absent: bool,
}

/// The alerts of every shipped rules file, read line by line.
fn shipped_alerts() -> Vec<Alert> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("alerts/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
        .collect();
    files.sort();
    let mut alerts = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("rules");
        let mut current: Option<Alert> = None;
        for line in text.lines() {
            let trimmed = line.trim_start();
            if let Some(name) = trimmed.strip_prefix("- alert:") {
                alerts.extend(current.take());
                current = Some(Alert {
                    name: name.trim().to_string(),
                    runbook_url: None,
                    absent: false,
                });
            } else if trimmed.starts_with("- record:") {
                alerts.extend(current.take());
            } else if let Some(alert) = current.as_mut() {
                alert.absent |= trimmed.contains("absent(");
                if let Some(value) = trimmed.strip_prefix("runbook_url:") {
                    let value = value.trim();
                    alert.runbook_url = value
                        .strip_prefix('\'')
                        .and_then(|v| v.strip_suffix('\''))
                        .map(|v| v.replace("''", "'"));
                }
            }
        }
        alerts.extend(current);
    }
    alerts
}

#[test]
fn every_alert_links_its_runbook_in_the_shared_form() {
    let alerts = shipped_alerts();
    let rules = repo_file("alerts/caretaker.rules.yml") + &repo_file("alerts/responder.rules.yml");
    assert_eq!(
        alerts.len(),
        rules.matches("- alert:").count(),
        "every alert read"
    );
    assert!(alerts.len() >= 30, "{alerts:?}");
    let runbooks = repo_file("docs/runbooks.md");
    for alert in &alerts {
        let expected = format!("{FORM}#{}", alert.name.to_lowercase());
        assert_eq!(
            alert.runbook_url.as_deref(),
            Some(expected.as_str()),
            "{}: runbook_url must be the shared form (one single-quoted line)",
            alert.name
        );
        assert!(
            runbooks.contains(&format!("\n### {}\n", alert.name)),
            "{}: no section in docs/runbooks.md",
            alert.name
        );
    }
    // The fallback names a file the package really installs.
    assert!(
        repo_file("Cargo.toml")
            .contains(r#"["docs/runbooks.md", "usr/share/doc/caretaker/", "644"]"#),
        "the Debian package installs the runbooks where {INSTALLED} says"
    );
}

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

/// Prometheus scraping `target` as job `caretaker`, with the link rules and
/// `external_labels` (YAML lines under `global.external_labels`).
fn prometheus(dir: &Path, target: &str, external_labels: &str, alerts: &[Alert]) -> Server {
    std::fs::write(dir.join("links.rules.yml"), link_rules(alerts)).expect("rules");
    let labels = if external_labels.is_empty() {
        String::new()
    } else {
        format!("  external_labels:\n{external_labels}")
    };
    start_prometheus(
        dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{labels}rule_files:\n  - links.rules.yml\nscrape_configs:\n  - job_name: caretaker\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
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
    let plain = prometheus(dirs[0].path(), &target, "", &alerts);
    let base = prometheus(
        dirs[1].path(),
        &target,
        &format!("    caretaker_runbook_base: '{published}'\n"),
        &alerts,
    );
    let tls = prometheus(
        dirs[2].path(),
        &target,
        "    caretaker_runbook_scheme: https\n",
        &alerts,
    );
    let client = reqwest::Client::new();

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
    drop((plain, base, tls));
    ct.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbooks_page_is_public_self_contained_and_linked_from_the_landing_page() {
    let ct = Caretaker::start(wal_database(), &responder_config("")).await;
    let landing = ct.get("/").await.text().await.expect("landing");
    assert!(landing.contains("href=\"/runbooks\""), "{landing}");

    // No token needed, as for the landing page.
    let response = ct.get("/runbooks").await;
    assert_eq!(response.status(), 200);
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    let page = response.text().await.expect("page");
    // Nothing fetched, nothing run: no script, no element or style that loads.
    for forbidden in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "src=", "url(", "@import",
    ] {
        assert!(!page.contains(forbidden), "the page contains {forbidden:?}");
    }
    // Nothing of this caretaker's configuration or credentials.
    let config_path = ct.config_path.display().to_string();
    for secret in [TOKEN, config_path.as_str()] {
        assert!(!page.contains(secret), "the page shows {secret:?}");
    }

    // A browser builds every alert's anchor from the page.
    let dom = crate::http::chromium_dump(&format!("{}/runbooks", ct.base));
    for alert in shipped_alerts() {
        let id = format!(" id=\"{}\"", alert.name.to_lowercase());
        assert!(dom.contains(&id), "{} not in the DOM", alert.name);
    }
    ct.stop().await;
}
