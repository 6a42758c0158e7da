//! The shipped rules and dashboards against the real thing: caretaker on a
//! realistic database, scraped every second by Debian's Prometheus loaded with
//! `alerts/` (`for:` shortened, expressions unchanged). Its responder handles
//! an alert and runs actions first, so the remediation dashboard has data.
//! Every dashboard query and variable must parse and return data, the
//! responder's alerts must fire on what it did, and every metric name the
//! rules and dashboards use must exist in caretaker's output.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{value, Caretaker};
use crate::prometheus::{api, poll, start_prometheus};
use crate::responder::{notification, write_token, TOKEN};

mod setup;
pub use setup::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_rules_work_on_live_data() {
    let ct = start_demo_caretaker(3000).await;
    let instance = ct.base.trim_start_matches("http://").to_string();

    let prom_dir = tempfile::tempdir().expect("tempdir");
    let rule_files: Vec<String> = rule_copies(prom_dir.path())
        .iter()
        .map(|p| format!("  - {}\n", p.display()))
        .collect();
    let prom = start_prometheus(
        prom_dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{}scrape_configs:\n  - job_name: caretaker\n    static_configs:\n      - targets: ['{instance}']\n",
            rule_files.concat()
        ),
    );
    let client = reqwest::Client::new();
    poll(
        "the rules to load and evaluate",
        Duration::from_secs(60),
        || async {
            let data = api(&client, &prom.base, "/api/v1/rules").await?;
            let groups = data["groups"].as_array()?;
            let evaluated = groups.iter().all(|g| {
                g["lastEvaluation"]
                    .as_str()
                    .is_some_and(|t| !t.starts_with("0001"))
            });
            (!groups.is_empty() && evaluated).then_some(())
        },
    )
    .await;
    responder_traffic(&ct).await;

    let queries: Vec<(String, String)> = dashboard_queries()
        .into_iter()
        .map(|(file, e)| (file, substitute(&e, "caretaker", &instance)))
        .collect();
    // Counters and trends need a few samples: retry until each query has data or time is up.
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut pending: Vec<(String, String)> = queries.clone();
    let mut last_errors = Vec::new();
    while !pending.is_empty() && Instant::now() < deadline {
        last_errors.clear();
        let mut still = Vec::new();
        for (file, q) in pending {
            let data = query(&client, &prom.base, &q).await;
            let empty = data["result"].as_array().is_none_or(|r| r.is_empty())
                && data["resultType"] != "scalar";
            if empty {
                last_errors.push(format!("{file}: {q}"));
                still.push((file, q));
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(
        pending.is_empty(),
        "queries without data:\n{}",
        last_errors.join("\n")
    );
    println!("{} dashboard queries returned data", queries.len());

    // What the responder did above is what its alerts are for; each fires,
    // counting the first event of a series (see alerts/responder.rules.yml).
    let expected = [
        "CaretakerActionFailing",
        "CaretakerActionBreakerOpen",
        "CaretakerRemediationUnresolved",
        "CaretakerWebhookAuthFailures",
        "CaretakerAlertsMisrouted",
    ];
    let firing = poll(
        "the responder's alerts",
        Duration::from_secs(30),
        || async {
            let data = query(&client, &prom.base, "ALERTS{alertstate=\"firing\"}").await;
            let names: BTreeSet<String> = data["result"]
                .as_array()?
                .iter()
                .filter_map(|a| a["metric"]["alertname"].as_str().map(str::to_string))
                .collect();
            expected.iter().all(|n| names.contains(*n)).then_some(names)
        },
    )
    .await;
    assert!(
        !firing.contains("CaretakerJobQueueBacklog"),
        "the queue is empty: {firing:?}"
    );
    // The "Misrouted alerts" panel counts the misrouted alert above (not
    // only its zero series): Prometheus has run for less than its window.
    let panel = |file: &'static str, title: &'static str| {
        let (client, base, instance) = (&client, &prom.base, &instance);
        async move {
            let expr = crate::dashboard_fleet::panel_expr(file, title);
            let q = substitute(&expr, "caretaker", instance);
            (q.clone(), query(client, base, &q).await)
        }
    };
    let (q, data) = panel("remediation.json", "Misrouted alerts").await;
    assert_eq!(data["result"][0]["value"][1], "1", "{q}: {data}");

    // The "Heartbeat" stat is the age of an answered request (a few
    // heartbeat intervals at most), and the full-scan table names the probe
    // without an index and only that one.
    let (q, data) = panel("overview.json", "Heartbeat").await;
    let age: f64 = data["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    assert!((0.0..30.0).contains(&age), "{q}: {data}");
    let (q, data) = panel("database.json", "Probes reading a whole table").await;
    let scans: Vec<&str> = data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["metric"]["query"].as_str())
        .collect();
    assert_eq!(scans, ["busy_patterns"], "{q}: {data}");
    // The "Restore drill" stat shows the drill above passing, per source.
    let (q, data) = panel("backups.json", "Restore drill").await;
    let drills: BTreeSet<(&str, &str)> = data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["metric"]["source"].as_str()?, r["value"][1].as_str()?)))
        .collect();
    assert_eq!(
        drills,
        [("local", "1"), ("offsite", "1")].into(),
        "{q}: {data}"
    );

    // Every metric the rules and dashboards name is one caretaker exposes.
    let exposed = ct.metrics_text().await;
    let families: BTreeSet<&str> = exposed
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let name = Regex::new(r"\bcaretaker_[a-z0-9_]+").expect("regex");
    // Prometheus's external labels the rules' templates read are no metrics.
    let external_label = Regex::new(r"\$externalLabels\.(caretaker_[a-z0-9_]+)").expect("regex");
    let mut labels = BTreeSet::new();
    let mut used = BTreeSet::new();
    for dir in ["alerts", "dashboards"] {
        for entry in std::fs::read_dir(repo().join(dir)).expect("dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yml" || e == "json") {
                let text = std::fs::read_to_string(&path).expect("read");
                used.extend(name.find_iter(&text).map(|m| m.as_str().to_string()));
                labels.extend(
                    external_label
                        .captures_iter(&text)
                        .map(|c| c[1].to_string()),
                );
            }
        }
    }
    let missing: Vec<&String> = used
        .difference(&labels)
        .filter(|n| {
            let base = ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n);
            !families.contains(n.as_str()) && !families.contains(base)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "used in alerts/ or dashboards/ but not exposed: {missing:?}"
    );
    drop(prom);
    ct.stop().await;
}
