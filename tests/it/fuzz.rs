//! Fuzzing the webhook and the action API with `proptest`, through the real
//! router in-process (`tower::ServiceExt::oneshot`): arbitrary bytes,
//! malformed JSON, wrong types, deep nesting, huge label sets, invalid UTF-8
//! and label values with shell metacharacters, `../` and NUL bytes. Every
//! answer is 2xx or 4xx (or 503 when the queue is full), nothing panics, and
//! the state database only ever holds jobs for configured actions and
//! databases, with only allow-listed labels for `command:` actions.
//!
//! `PROPTEST_CASES` sets the cases per test (256 by default); each test
//! prints a `RELIABILITY fuzz ...` line with cases per second.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use caretaker::config::Config;
use caretaker::daemon::Runtime;
use caretaker::responder::metrics::ResponderMetrics;
use caretaker::web::{router, AppState};
use prometheus_client::registry::Registry;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::responder::{wal_database, TOKEN};

const ALLOWED_LABELS: [&str; 2] = ["alertname", "severity"];

fn config() -> String {
    r#"[web]
token_file = "token"

[[database]]
name = "memory"
path = "memory.db"

[responder]
dry_run = true
queue_size = 100000

[[rule]]
name = "checkpoint"
matchers = ['alertname="CaretakerWalLarge"']
actions = ["wal_checkpoint"]

[[rule]]
name = "page"
matchers = ['alertname=~"Page.*"']
actions = ["command:page"]

[[command]]
name = "page"
argv = ["/bin/true"]
env_labels = ["alertname", "severity"]
"#
    .to_string()
}

/// caretaker's router on a runtime built as `daemon::run` builds it.
pub struct InProcess {
    pub dir: tempfile::TempDir,
    pub router: Router,
    cancel: CancellationToken,
}

impl InProcess {
    pub async fn start(dir: tempfile::TempDir, config: &str) -> InProcess {
        let path = dir.path().join("caretaker.toml");
        std::fs::write(&path, config).expect("config");
        let cfg = Config::load(&path).expect("valid config");
        let cancel = CancellationToken::new();
        let mut registry = Registry::default();
        let metrics = Arc::new(ResponderMetrics::register(&mut registry));
        let runtime = Runtime::start(cfg, Default::default(), cancel.clone(), metrics.clone())
            .await
            .expect("runtime");
        let state = Arc::new(AppState {
            registry,
            live: metrics,
            runtime,
        });
        InProcess {
            dir,
            router: router(state),
            cancel,
        }
    }

    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

/// Strings an attacker would try in a label, a path or a query.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("memory".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("memory\0".to_string()),
        Just("$(rm -rf /); `id` | cat && echo ${HOME} > /tmp/x".to_string()),
        Just("command:page".to_string()),
        Just("..%2f..%2fetc".to_string()),
        Just(String::new()),
        "\\PC{0,40}",
        ".{0,20}",
        "[a-z_:./\\\\$`;|&<>'\"\0-]{0,30}",
    ]
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    let alertname = prop_oneof![
        Just("CaretakerWalLarge".to_string()),
        Just("Page".to_string()),
        Just("PageMe".to_string()),
        nasty()
    ];
    (
        alertname,
        nasty(),
        prop::collection::btree_map(nasty(), nasty(), 0..6),
    )
        .prop_map(|(a, db, mut rest)| {
            rest.insert("alertname".into(), a);
            rest.insert("database".into(), db);
            rest
        })
}

/// A JSON value of any shape, for fields that should have another type.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        nasty().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(nasty(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn alert() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("firing"), Just("resolved"), Just("")],
        labels(),
        nasty(),
        nasty(),
    )
        .prop_map(|(status, labels, fp, starts)| {
            json!({"status": status, "labels": labels, "annotations": {}, "startsAt": starts,
                   "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": fp})
        })
}

fn notification() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just("firing".to_string()),
            Just("resolved".to_string()),
            nasty()
        ],
        prop::collection::vec(alert(), 0..5),
    )
        .prop_map(|(status, alerts)| {
            json!({"version": "4", "groupKey": "{}", "truncatedAlerts": 0, "status": status,
                   "receiver": "caretaker", "groupLabels": {}, "commonLabels": {},
                   "commonAnnotations": {}, "externalURL": "", "alerts": alerts})
        })
}

/// Webhook bodies, from plausible to hostile.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => notification().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..512),
        // Wrong types in one field.
        2 => (notification(), prop_oneof![Just("alerts"), Just("status"), Just("version")], any_json())
            .prop_map(|(mut n, field, v)| {
                n[field] = v;
                n.to_string().into_bytes()
            }),
        1 => (notification(), any_json()).prop_map(|(mut n, v)| {
            if let Some(a) = n["alerts"].get_mut(0) {
                a["labels"] = v;
            }
            n.to_string().into_bytes()
        }),
        // Malformed JSON: a valid body cut short or with bytes flipped (invalid UTF-8 too).
        2 => (notification(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(n, at, b)| {
            let mut bytes = n.to_string().into_bytes();
            let i = at.index(bytes.len());
            if b % 2 == 0 {
                bytes.truncate(i);
            } else {
                bytes[i] = 0x80 | b;
            }
            bytes
        }),
        // Deep nesting, up to 10,000 levels.
        1 => (1usize..10_000, any::<bool>()).prop_map(|(depth, arrays)| {
            let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
            format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes()
        }),
        // A huge label set.
        1 => (100usize..2_000, nasty()).prop_map(|(n, v)| {
            let labels: BTreeMap<String, String> =
                (0..n).map(|i| (format!("l{i}"), v.clone())).chain([("alertname".to_string(), "PageMe".to_string())]).collect();
            json!({"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": labels, "fingerprint": "huge", "startsAt": "2026-01-01T00:00:00Z"}]})
                .to_string()
                .into_bytes()
        }),
    ]
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Action API requests: an action, a query string.
fn api_request() -> impl Strategy<Value = (String, String)> {
    let action = prop_oneof![
        Just("analyze".to_string()),
        Just("command:page".to_string()),
        Just("command:nope".to_string()),
        Just("command".to_string()),
        nasty(),
    ];
    let query = prop_oneof![
        nasty().prop_map(|d| format!("database={}&dry_run=true", encode(&d))),
        (nasty(), nasty()).prop_map(|(d, x)| format!(
            "database={}&dry_run={}",
            encode(&d),
            encode(&x)
        )),
        nasty().prop_map(|q| q.replace(['#', ' '], "")),
        Just("database=memory&database=other".to_string()),
    ];
    (action, query)
}

fn acceptable(status: StatusCode, body: &[u8]) -> bool {
    status.is_success()
        || status.is_client_error()
        || (status == StatusCode::SERVICE_UNAVAILABLE && body.starts_with(b"job queue is full"))
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = router.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, body.to_vec())
}

/// Only configured actions and databases, and allow-listed labels, in the state database.
fn assert_state_clean(state: &std::path::Path) -> u64 {
    let conn = rusqlite::Connection::open(state).expect("state");
    let mut stmt = conn
        .prepare("SELECT action, database, labels FROM jobs")
        .expect("select");
    let rows: Vec<(String, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    for (action, database, labels) in &rows {
        assert_eq!(database, "memory", "job for unconfigured database");
        assert!(
            action == "command:page"
                || caretaker::actions::kind::ActionKind::ALL
                    .iter()
                    .any(|k| k.to_string() == *action),
            "job for unconfigured action {action:?}"
        );
        if let Some(l) = labels {
            let map: BTreeMap<String, String> = serde_json::from_str(l).expect("labels json");
            assert!(
                map.keys().all(|k| ALLOWED_LABELS.contains(&k.as_str())),
                "labels beyond the allow-list: {map:?}"
            );
        }
    }
    rows.len() as u64
}

fn runner() -> TestRunner {
    TestRunner::new(RunnerConfig {
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

fn report(what: &str, cases: u64, started: Instant, jobs: u64) {
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "RELIABILITY fuzz target={what} cases={cases} seconds={secs:.1} cases_per_second={:.0} jobs_recorded={jobs}",
        cases as f64 / secs
    );
}

#[test]
fn webhook_bodies_never_break_caretaker() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ct = rt.block_on(InProcess::start(wal_database(), &config()));
    let cases = AtomicU64::new(0);
    let started = Instant::now();
    runner()
        .run(&body(), |bytes| {
            cases.fetch_add(1, Ordering::Relaxed);
            let req = Request::post("/hooks/alertmanager")
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("content-type", "application/json")
                .body(Body::from(bytes))
                .expect("request");
            let (status, body) = rt.block_on(send(&ct.router, req));
            prop_assert!(
                acceptable(status, &body),
                "{status}: {}",
                String::from_utf8_lossy(&body)
            );
            Ok(())
        })
        .expect("every webhook body is answered with 2xx or 4xx");
    let jobs = assert_state_clean(&ct.dir.path().join("state/caretaker-state.db"));
    report("webhook", cases.into_inner(), started, jobs);
    ct.stop();
}

#[test]
fn action_api_requests_never_break_caretaker() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ct = rt.block_on(InProcess::start(wal_database(), &config()));
    let cases = AtomicU64::new(0);
    let started = Instant::now();
    runner()
        .run(&api_request(), |(action, query)| {
            cases.fetch_add(1, Ordering::Relaxed);
            let uri = format!("/api/v1/actions/{}?{query}", encode(&action));
            let Ok(req) = Request::post(uri.as_str())
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
            else {
                return Ok(()); // not a URI a client could send
            };
            let (status, body) = rt.block_on(send(&ct.router, req));
            prop_assert!(
                acceptable(status, &body),
                "{uri} -> {status}: {}",
                String::from_utf8_lossy(&body)
            );
            Ok(())
        })
        .expect("every action request is answered with 2xx or 4xx");
    let jobs = assert_state_clean(&ct.dir.path().join("state/caretaker-state.db"));
    report("api", cases.into_inner(), started, jobs);
    ct.stop();
}
