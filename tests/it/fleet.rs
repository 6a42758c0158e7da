//! The fleet example in `config/fleet/` with real binaries: two caretakers
//! (two hosts, both with a database named `memory`), a Prometheus per host
//! loaded with the shipped rules, and a global Prometheus that federates from
//! both with the example's configuration. Every dashboard query, with `All`
//! chosen for `job` and `instance`, evaluated on the global server, returns
//! one series set per caretaker and never a series that adds them together.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{check_config, value};
use crate::dashboards::{
    dashboard_queries, query, responder_traffic, rule_copies, start_demo_caretaker, substitute,
};
use crate::prometheus::{api, poll, start_prometheus, Server};
use crate::responder::write_token;

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/fleet")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Starts Prometheus on `file` of the example, with its addresses, rule
/// folder and intervals replaced by the test's.
fn start_example(dir: &Path, file: &str, replacements: &[(&str, String)]) -> Server {
    let mut config = example(file)
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("scrape_interval: 30s", "scrape_interval: 1s")
        .replace("scrape_timeout: 20s", "scrape_timeout: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
    for (from, to) in replacements {
        assert!(config.contains(from), "{file} holds {from}");
        config = config.replace(from, to);
    }
    start_prometheus(dir, &config)
}

/// The instances a query's result holds series of; panics on a series
/// without an `instance` or of anyone else.
fn instances_of(data: &Value, ours: &BTreeSet<String>, q: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for series in data["result"].as_array().into_iter().flatten() {
        let instance = series["metric"]["instance"].as_str();
        match instance {
            Some(i) if ours.contains(i) => {
                seen.insert(i.to_string());
            }
            _ => panic!("a series of no single caretaker: {series}\n  from {q}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_shows_each_host_apart_through_the_global_prometheus() {
    // The example's caretaker configurations are valid as shipped, paths aside.
    let root = tempfile::tempdir().expect("tempdir");
    write_token(root.path());
    for host in ["db1", "db2"] {
        let text = example(&format!("caretaker-{host}.toml"))
            .replace("/srv/agent/", &format!("{}/", root.path().display()));
        let path: PathBuf = root.path().join(format!("caretaker-{host}.toml"));
        std::fs::write(&path, text).expect("write");
        let out = check_config(&path);
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{host}: {said}");
        assert!(said.contains(&format!("{host}:10210")), "{host}: {said}");
    }

    // Two hosts, both with `memory`, of different sizes.
    let a = start_demo_caretaker(3000).await;
    let b = start_demo_caretaker(700).await;
    let target = |base: &str| base.trim_start_matches("http://").to_string();
    let (ia, ib) = (target(&a.base), target(&b.base));
    let ours: BTreeSet<String> = [ia.clone(), ib.clone()].into();

    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let mut hosts = Vec::new();
    for (i, (host, instance)) in [("db1", &ia), ("db2", &ib)].into_iter().enumerate() {
        let rules = dirs[i].path().join("rules");
        std::fs::create_dir(&rules).expect("mkdir");
        rule_copies(&rules);
        hosts.push(start_example(
            dirs[i].path(),
            &format!("prometheus-{host}.yml"),
            &[
                (
                    "/etc/prometheus/alerts/*.rules.yml",
                    format!("{}/*.rules.yml", rules.display()),
                ),
                (&format!("'{host}:10210'"), format!("'{instance}'")),
                ("'alertmanager:9093'", "'127.0.0.1:1'".into()),
            ],
        ));
    }
    let host_target = |s: &Server| format!("'{}'", target(&s.base));
    let global = start_example(
        dirs[2].path(),
        "prometheus-global.yml",
        &[
            ("'prometheus-db1:9090'", host_target(&hosts[0])),
            ("'prometheus-db2:9090'", host_target(&hosts[1])),
        ],
    );
    let client = reqwest::Client::new();
    for (name, s) in [("db1", &hosts[0]), ("db2", &hosts[1])] {
        poll(
            &format!("{name}'s rules"),
            Duration::from_secs(60),
            || async {
                let data = api(&client, &s.base, "/api/v1/rules").await?;
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
    }
    responder_traffic(&a).await;
    responder_traffic(&b).await;

    // With All chosen, each query must come back for both hosts, apart.
    let queries: Vec<(String, String)> = dashboard_queries()
        .into_iter()
        .map(|(file, e)| (file, substitute(&e, ".+", ".+")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending = queries.clone();
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for (file, q) in pending {
            let data = query(&client, &global.base, &q).await;
            if instances_of(&data, &ours, &q) != ours {
                still.push((file, q));
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let missing: Vec<String> = pending.iter().map(|(f, q)| format!("{f}: {q}")).collect();
    assert!(
        missing.is_empty(),
        "queries without a series set for each host:\n{}",
        missing.join("\n")
    );

    // The figures are each host's own, not a sum: the pattern count of each
    // host through the global server is the one its caretaker exposes.
    for (ct, instance) in [(&a, &ia), (&b, &ib)] {
        let m = ct.metrics().await;
        let own: f64 = m
            .iter()
            .filter(|s| s.name == "caretaker_patterns")
            .map(|s| s.value)
            .sum();
        assert!(own > 0.0);
        let q = format!(
            "caretaker:patterns:sum{{job=\"caretaker\",instance=\"{instance}\",database=\"memory\"}}"
        );
        let data = query(&client, &global.base, &q).await;
        let got: f64 = data["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        assert_eq!(got, own, "{instance}: {data}");
        assert_eq!(value(&m, "caretaker_database_up", &[]), Some(1.0));
    }
    println!(
        "{} dashboard queries answered per host through federation",
        queries.len()
    );
    drop(global);
    drop(hosts);
    a.stop().await;
    b.stop().await;
}
