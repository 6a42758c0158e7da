//! The public contract of `/metrics`: every family's name, type, unit, help
//! and label names, compared with `tests/golden/metrics.txt`. Values are not
//! compared (host, process and timing figures depend on the machine); label
//! values are kept only for labels whose values are a closed set that does
//! not depend on the data. Regenerate with `CARETAKER_UPDATE_GOLDEN=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use caretaker::config::Config;
use caretaker::demo::DemoOptions;
use tokio_util::sync::CancellationToken;

/// Labels whose values are fixed by caretaker itself, not by the data.
const CLOSED_LABELS: &[&str] = &["collector", "confidence_tier", "table"];

#[derive(Default, Debug)]
struct Family {
    kind: String,
    unit: String,
    help: String,
    labels: BTreeMap<String, BTreeSet<String>>,
}

/// The suffixes a sample name may add to its family's name, by family type.
fn family_of<'a>(sample: &'a str, families: &BTreeMap<String, Family>) -> Option<&'a str> {
    if families.contains_key(sample) {
        return Some(sample);
    }
    ["_total", "_bucket", "_count", "_sum", "_created", "_info"]
        .iter()
        .filter_map(|s| sample.strip_suffix(s))
        .find(|base| families.contains_key(*base))
}

fn describe(text: &str) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        let Some(meta) = line.strip_prefix("# ") else {
            continue;
        };
        let mut parts = meta.splitn(3, ' ');
        let (Some(what), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        let rest = parts.next().unwrap_or("").to_string();
        let family = families.entry(name.to_string()).or_default();
        match what {
            "TYPE" => family.kind = rest,
            "UNIT" => family.unit = rest,
            "HELP" => family.help = rest,
            _ => {}
        }
    }
    for sample in crate::common::parse(text) {
        let name = family_of(&sample.name, &families)
            .unwrap_or_else(|| panic!("sample {} has no family", sample.name))
            .to_string();
        let family = families.get_mut(&name).expect("family");
        for (key, value) in sample.labels {
            if key == "le" {
                continue;
            }
            let values = family.labels.entry(key.clone()).or_default();
            if CLOSED_LABELS.contains(&key.as_str()) {
                values.insert(value);
            }
        }
    }
    let mut out = String::new();
    for (name, f) in &families {
        out.push_str(&format!("{name} {} unit={:?}\n", f.kind, f.unit));
        out.push_str(&format!("{name} help {}\n", f.help));
        for (label, values) in &f.labels {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            out.push_str(&format!("{name} label {label} {}\n", values.join(",")));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_match_the_golden_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = caretaker::demo::prepare(
        dir.path(),
        &DemoOptions {
            patterns: 300,
            pattern_bytes: 200,
            listen_address: None,
        },
    )
    .expect("demo");
    let cfg = Config::load(&config_path).expect("demo config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(caretaker::daemon::run(cfg, listener, shutdown.clone()));
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client.get(format!("{base}/-/ready")).send().await;
        if ready.map(|r| r.status() == 200).unwrap_or(false) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One action run, so that the families of action runs are in the contract.
    let token = std::fs::read_to_string(dir.path().join("token")).expect("token");
    let run = client
        .post(format!(
            "{base}/api/v1/actions/integrity_check?database=memory&wait=true"
        ))
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("run");
    assert!(run.status().is_success(), "{}", run.status());
    // A backup and a drill of it, so that the backup and drill families are in it too.
    for action in ["backup", "restore_drill"] {
        let run = client
            .post(format!(
                "{base}/api/v1/actions/{action}?database=memory&wait=true"
            ))
            .bearer_auth(token.trim())
            .send()
            .await
            .expect("run");
        assert!(run.status().is_success(), "{action}: {}", run.status());
    }
    // The demo's snapshot loop starts a chain on a full backup: the contract
    // includes the chain's families too.
    let memory = [("database", "memory")];
    let text = loop {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body");
        let samples = crate::common::parse(&text);
        let value = |name| crate::common::value(&samples, name, &memory);
        if text.contains("caretaker_restore_drill_success{")
            && value("caretaker_backup_chain_length").is_some()
        {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no drill figures or no chain in the demo"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    shutdown.cancel();
    task.await.expect("join").expect("clean stop");

    let got = describe(&text);
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/metrics.txt");
    if std::env::var_os("CARETAKER_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().expect("parent")).expect("mkdir");
        std::fs::write(&golden, &got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&golden)
        .expect("tests/golden/metrics.txt (create it with CARETAKER_UPDATE_GOLDEN=1)");
    if got != want {
        let want_lines: BTreeSet<&str> = want.lines().collect();
        let got_lines: BTreeSet<&str> = got.lines().collect();
        let missing: Vec<_> = want_lines.difference(&got_lines).collect();
        let extra: Vec<_> = got_lines.difference(&want_lines).collect();
        panic!(
            "/metrics no longer matches tests/golden/metrics.txt \
             (rerun with CARETAKER_UPDATE_GOLDEN=1 if the change is intended)\n\
             missing: {missing:#?}\nnew: {extra:#?}"
        );
    }
}
