//! One real Alertmanager in front of two caretakers, configured by
//! `scripts/alertmanager-routes.sh` (a route per host, matched on
//! `instance`), plus a deliberately wrong route that copies every alert to
//! both. Each caretaker acts on its own host's alert only; the copy meant for
//! the other host is counted as `other_instance` and changes nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::alertmanager::{add_alert, start_alertmanager_with, wait_ready};
use crate::common::{value, Caretaker, Sample};
use crate::responder::{responder_config, wal_database};

/// The script's configuration for `hosts` (`INSTANCE URL` lines).
fn generated_config(hosts: &str, token_file: &Path, group_wait: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/alertmanager-routes.sh");
    let mut child = Command::new("bash")
        .arg(script)
        .arg("--token-file")
        .arg(token_file)
        .args(["--group-wait", group_wait])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(hosts.as_bytes())
        .expect("hosts");
    let out = child.wait_with_output().expect("script");
    assert!(
        out.status.success(),
        "alertmanager-routes.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `config` with a first route, `continue: true`, that sends every alert to
/// both caretakers: the misrouting the guard is there for.
fn misrouted(config: &str, a: &str, b: &str, token_file: &Path) -> String {
    let route = "    - receiver: everyone\n      continue: true\n";
    let with_route = config.replacen("  routes:\n", &format!("  routes:\n{route}"), 1);
    assert_ne!(with_route, config, "the generated config has routes");
    let hook = |base: &str| {
        format!(
            "      - url: {base}/hooks/alertmanager\n        http_config:\n          authorization:\n            credentials_file: {}\n",
            token_file.display()
        )
    };
    format!(
        "{with_route}  - name: everyone\n    webhook_configs:\n{}{}",
        hook(a),
        hook(b)
    )
}

fn runs(m: &[Sample], action: &str) -> f64 {
    value(
        m,
        "caretaker_action_runs_total",
        &[("action", action), ("result", "success")],
    )
    .unwrap_or(0.0)
}

fn ignored(m: &[Sample]) -> f64 {
    value(
        m,
        "caretaker_alerts_ignored_total",
        &[("reason", "other_instance")],
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alertmanager_routes_each_host_to_its_caretaker_and_misrouted_copies_change_nothing() {
    let (dir_a, dir_b) = (wal_database(), wal_database());
    let token_file = dir_a.path().join("token"); // both hold the same token
    let a = Caretaker::start(dir_a, &responder_config("")).await;
    let b = Caretaker::start(dir_b, &responder_config("")).await;
    let instance = |ct: &Caretaker| ct.base.trim_start_matches("http://").to_string();
    let (ia, ib) = (instance(&a), instance(&b));
    let wal = |m: &[Sample]| value(m, "caretaker_database_wal_size_bytes", &[]).unwrap_or(0.0);
    let wal_b_before = wal(&b.metrics().await);
    assert!(wal_b_before > 0.0, "b's database has a WAL to lose");

    let hosts = format!("# two caretakers\n{ia} {}\n{ib} {}/\n", a.base, b.base);
    let config = misrouted(
        &generated_config(&hosts, &token_file, "0s"),
        &a.base,
        &b.base,
        &token_file,
    );
    let am_dir = tempfile::tempdir().expect("tempdir");
    let am = start_alertmanager_with(am_dir.path(), &config);
    let client = reqwest::Client::new();
    wait_ready(&client, &am).await;

    // A's WAL alert and B's integrity alert; each reaches both caretakers.
    add_alert(
        &am,
        "CaretakerWalLarge",
        &[
            "database=memory".into(),
            "severity=warning".into(),
            format!("instance={ia}"),
        ],
    );
    add_alert(
        &am,
        "CaretakerIntegrityCheckStale",
        &[
            "database=memory".into(),
            "severity=warning".into(),
            format!("instance={ib}"),
        ],
    );
    let done = |own: &'static str| move |m: &[Sample]| runs(m, own) >= 1.0 && ignored(m) >= 1.0;
    let ma = a
        .wait_for(
            "a's own alert and b's copy",
            Duration::from_secs(30),
            done("wal_checkpoint"),
        )
        .await;
    let mb = b
        .wait_for(
            "b's own alert and a's copy",
            Duration::from_secs(30),
            done("integrity_check"),
        )
        .await;

    // Each acted once, on its own alert only.
    assert_eq!(runs(&ma, "wal_checkpoint"), 1.0);
    assert_eq!(runs(&ma, "integrity_check"), 0.0, "b's alert ran on a");
    assert_eq!(runs(&mb, "integrity_check"), 1.0);
    assert_eq!(runs(&mb, "wal_checkpoint"), 0.0, "a's alert ran on b");
    for (name, ct, m) in [("a", &a, &ma), ("b", &b, &mb)] {
        assert_eq!(
            ignored(m),
            1.0,
            "{name}: one copy of the other host's alert"
        );
        let jobs = ct.wait_jobs_done(1).await;
        assert_eq!(
            jobs.len(),
            1,
            "{name}: one job, for its own alert: {jobs:?}"
        );
        assert_eq!(jobs[0]["status"], "succeeded", "{name}: {jobs:?}");
        let events = ct.audit_events().await;
        let other = if name == "a" { &ib } else { &ia };
        assert!(
            events.iter().any(|e| e["reason"] == "other_instance"),
            "{name}: the ignored copy is audited: {events:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| e["event"] == "matched" && e.to_string().contains(other.as_str())),
            "{name}: matched an alert of {other}: {events:?}"
        );
    }
    // A's checkpoint emptied its WAL; B's, which only a copy asked for, is intact.
    a.wait_for("a's checkpoint", Duration::from_secs(10), |m| wal(m) == 0.0)
        .await;
    assert!(
        wal(&b.metrics().await) >= wal_b_before,
        "b's WAL was checkpointed"
    );
    drop(am);
    a.stop().await;
    b.stop().await;
}

/// The example's Alertmanager configuration is the script's output for the
/// example's host list, so the two never drift apart.
#[test]
fn the_fleet_examples_alertmanager_config_is_generated_from_its_hosts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/fleet");
    let hosts = std::fs::read_to_string(dir.join("hosts")).expect("hosts");
    let shipped = std::fs::read_to_string(dir.join("alertmanager.yml")).expect("alertmanager.yml");
    let generated = generated_config(
        &hosts,
        Path::new("/etc/alertmanager/caretaker_token"),
        "10s",
    );
    assert_eq!(
        shipped, generated,
        "regenerate: scripts/alertmanager-routes.sh --token-file /etc/alertmanager/caretaker_token < config/fleet/hosts > config/fleet/alertmanager.yml"
    );
}
