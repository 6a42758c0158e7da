//! Promises of a fleet: an alert for another host's caretaker never acts
//! here, one for this caretaker (or without an `instance` label) does.

use serde_json::Value;

use crate::common::{value, Caretaker};
use crate::responder::{notification, responder_config, wal_database, TOKEN};

/// A firing WAL alert labelled with `instance`.
fn for_instance(instance: &str, fingerprint: &str) -> Value {
    let mut n = notification(
        "firing",
        "CaretakerWalLarge",
        fingerprint,
        "2026-01-01T00:00:00Z",
    );
    n["alerts"][0]["labels"]["instance"] = Value::from(instance);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_for_another_instance_is_acknowledged_and_changes_nothing() {
    let ct = Caretaker::start(wal_database(), &responder_config("")).await;
    let ignored = |m: &[crate::common::Sample]| {
        value(
            m,
            "caretaker_alerts_ignored_total",
            &[("reason", "other_instance")],
        )
    };
    assert_eq!(ignored(&ct.metrics().await), Some(0.0));

    let r = ct
        .post(
            "/hooks/alertmanager",
            Some(TOKEN),
            &for_instance("db2:10210", "fp-other"),
        )
        .await;
    assert_eq!(r.status(), 202);
    let reply: Value = r.json().await.expect("json");
    assert_eq!(reply["accepted"], 0);
    assert_eq!(reply["other_instance"], 1);
    assert!(ct.jobs().await.is_empty(), "no job for another host");
    assert_eq!(ignored(&ct.metrics().await), Some(1.0));
    let events = ct.audit_events().await;
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "other_instance" && e["fingerprint"] == "fp-other"),
        "{events:?}"
    );

    // The address Prometheus scrapes this caretaker at is one of its own.
    let ours = ct.base.trim_start_matches("http://").to_string();
    let r = ct
        .post(
            "/hooks/alertmanager",
            Some(TOKEN),
            &for_instance(&ours, "fp-ours"),
        )
        .await;
    let reply: Value = r.json().await.expect("json");
    assert_eq!(reply["accepted"], 1, "{reply}");
    let jobs = ct.wait_jobs_done(1).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["status"], "succeeded", "{jobs:?}");
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_identity_replaces_the_defaults() {
    let config = format!(
        "{}\n[responder]\ninstance = [\"db1.example.com:10210\"]\n",
        responder_config("")
    );
    let ct = Caretaker::start(wal_database(), &config).await;
    let local = ct.base.trim_start_matches("http://").to_string();
    let reply: Value = ct
        .post(
            "/hooks/alertmanager",
            Some(TOKEN),
            &for_instance(&local, "fp-local"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(reply["other_instance"], 1, "{reply}");
    let reply: Value = ct
        .post(
            "/hooks/alertmanager",
            Some(TOKEN),
            &for_instance("db1.example.com:10210", "fp-named"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(reply["accepted"], 1, "{reply}");
    ct.stop().await;
}

/// The shipped rules keep the scraped target's `instance` on every alert, so
/// Alertmanager can route it to, and caretaker recognise it as, its host:
/// every aggregation says which labels it drops (`without`), or keeps
/// `instance` in its `by`.
#[test]
fn shipped_rules_never_aggregate_instance_away() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts");
    for name in ["caretaker.rules.yml", "responder.rules.yml"] {
        let text = std::fs::read_to_string(root.join(name)).expect("rules");
        for (at, _) in text.match_indices(" by (") {
            let clause = &text[at..text[at..].find(')').map_or(text.len(), |e| at + e)];
            assert!(
                clause.contains("instance"),
                "{name}: an aggregation drops instance: {clause}"
            );
        }
        for (at, _) in text.match_indices("without (") {
            let clause = &text[at..text[at..].find(')').map_or(text.len(), |e| at + e)];
            assert!(
                !clause.contains("instance"),
                "{name}: an aggregation drops instance: {clause}"
            );
        }
    }
}
