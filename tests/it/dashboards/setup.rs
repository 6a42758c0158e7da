//! What the dashboard tests share (the fleet test too): the shipped
//! dashboards' queries with Grafana's variables filled in, the rules with
//! `for:` shortened, and caretaker with data behind every panel.

use super::*;

pub(super) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every PromQL expression of a dashboard: panel targets and variable queries.
pub(super) fn expressions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("expr", Value::String(s)) if !s.is_empty() => out.push(s.clone()),
                    ("query", Value::String(s)) if s.contains("caretaker") => out.push(s.clone()),
                    _ => expressions(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| expressions(i, out)),
        _ => {}
    }
}

/// Grafana's variables replaced by real values (`job` and `instance` as
/// chosen, or `.+` for All); `label_values(expr, label)` becomes `expr`.
pub fn substitute(expr: &str, job: &str, instance: &str) -> String {
    let e = expr
        .replace("${database}", "memory")
        .replace("$database", "memory")
        .replace("${job}", job)
        .replace("$job", job)
        .replace("${instance}", instance)
        .replace("$instance", instance)
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h");
    match e.strip_prefix("label_values(") {
        Some(rest) => rest
            .rsplit_once(',')
            .map_or(e.clone(), |(inner, _)| inner.trim().to_string()),
        None => e,
    }
}

/// Every dashboard's expressions (panels and variables), with the file they are in.
pub fn dashboard_queries() -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for entry in std::fs::read_dir(repo().join("dashboards")).expect("dashboards/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let json: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            let mut exprs = Vec::new();
            expressions(&json, &mut exprs);
            assert!(!exprs.is_empty(), "{} has queries", path.display());
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            queries.extend(exprs.into_iter().map(|e| (name.clone(), e)));
        }
    }
    queries
}

/// The shipped rules copied into `dir` with every `for:` shortened to 0s;
/// their paths, for Prometheus's `rule_files`.
pub fn rule_copies(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let for_clause = Regex::new(r"(?m)^(\s+)for: .*$").expect("regex");
    for entry in std::fs::read_dir(repo().join("alerts")).expect("alerts/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yml") {
            let text = std::fs::read_to_string(&path).expect("rules");
            let copy = dir.join(path.file_name().expect("name"));
            std::fs::write(&copy, for_clause.replace_all(&text, "${1}for: 0s").as_ref())
                .expect("copy");
            out.push(copy);
        }
    }
    assert!(!out.is_empty(), "alerts/ holds rules");
    out
}

/// caretaker on a realistic database of `patterns` patterns named `memory`,
/// with a verified backup, the token, [`CONFIG`] and a heartbeat receiver
/// of its own on port 0 (the heartbeat panels need its answers); one more
/// backup is uploaded to an offsite folder and both copies are drilled.
pub async fn start_demo_caretaker(patterns: u64) -> Caretaker {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("memory.db");
    let opts = caretaker::demo::generate::GenerateOptions {
        patterns,
        ..Default::default()
    };
    caretaker::demo::generate::generate(&db, &opts).expect("generate");
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).expect("mkdir");
    let bytes = std::fs::read(&db).expect("read");
    std::fs::write(backups.join("memory-1.db"), &bytes).expect("backup");
    let sum = format!("{:x}  memory-1.db\n", Sha256::digest(&bytes));
    std::fs::write(backups.join("memory-1.db.sha256"), sum).expect("sidecar");
    write_token(dir.path());
    let (receiver, _, _) = crate::heartbeat::receiver().await;
    let url = format!("{receiver}/ping/{}", crate::heartbeat::SECRET);
    let offsite = dir.path().join("offsite");
    let config = CONFIG
        .replace("HEARTBEAT_URL", &url)
        .replace("OFFSITE", &offsite.display().to_string());
    let ct = Caretaker::start(dir, &config).await;
    // A backup uploaded to the offsite folder, and a drill of both copies.
    run_action(&ct, "backup", "succeeded").await;
    run_action(&ct, "restore_drill", "succeeded").await;
    ct
}

/// caretaker's configuration: one database with backups, a token, a
/// heartbeat (`HEARTBEAT_URL` replaced), a rule for CaretakerWalLarge, a
/// command that always fails and two query probes, one reading a whole table.
pub(super) const CONFIG: &str = r#"[web]
token_file = "token"
heartbeat_url = "HEARTBEAT_URL"
heartbeat_interval = "1s"

[[database]]
name = "memory"
path = "memory.db"
[database.backup]
dir = "backups"
# The snapshot loop: it asks for a full backup, then publishes the recovery point.
incremental_interval = "1s"
[database.backup.offsite]
url = "file://OFFSITE"
encrypt = false

[[rule]]
name = "checkpoint"
matchers = ['alertname="CaretakerWalLarge"']
actions = ["wal_checkpoint"]

[[command]]
name = "fail"
argv = ["false"]

# The rules' query probe families (CaretakerQuerySlow) must be exposed too;
# usage_count has no index, so the second probe is the full-scan table's row.
[[query]]
name = "pattern_lookup"
sql = "SELECT id FROM patterns WHERE type = 'code_review' ORDER BY confidence DESC LIMIT 10"
interval = "5s"

[[query]]
name = "busy_patterns"
sql = "SELECT count(*) FROM patterns WHERE usage_count > 3"
interval = "5s"
"#;

/// Runs `action` through the API, waits for it, and checks its final status.
pub(super) async fn run_action(ct: &Caretaker, action: &str, status: &str) {
    let body: Value = ct
        .client
        .post(format!("{}/api/v1/actions/{action}?wait=true", ct.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(body["job"]["status"], status, "{action}: {body}");
}

/// Gives every responder metric a series: an alert remediated, repeated and
/// resolved; an alert no rule matches; an alert for another host's caretaker;
/// runs by hand (one disabled, one that fails until its breaker opens); a
/// request with a wrong token.
pub async fn responder_traffic(ct: &Caretaker) {
    let starts = "2026-01-01T00:00:00Z";
    let firing = notification("firing", "CaretakerWalLarge", "fp-dash", starts);
    let reply: Value = ct
        .post("/hooks/alertmanager", Some(TOKEN), &firing)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(reply["accepted"], 1, "{reply}");
    let jobs = ct.wait_jobs_done(1).await;
    assert_eq!(jobs[0]["status"], "succeeded", "{jobs:?}");
    let mut repeat = firing.clone();
    repeat["notification_reason"] = json!("repeat interval elapsed");
    let resolved = notification("resolved", "CaretakerWalLarge", "fp-dash", starts);
    let unmatched = notification("firing", "SomethingElse", "fp-other", starts);
    let mut misrouted = notification("firing", "CaretakerWalLarge", "fp-misrouted", starts);
    misrouted["alerts"][0]["labels"]["instance"] = json!("db9.example.com:10210");
    for body in [&repeat, &resolved, &unmatched, &misrouted] {
        let r = ct.post("/hooks/alertmanager", Some(TOKEN), body).await;
        assert_eq!(r.status(), 202);
    }
    let r = ct
        .post(
            "/hooks/alertmanager",
            Some("wrong-token-0123456789abcdef"),
            &firing,
        )
        .await;
    assert_eq!(r.status(), 401);

    run_action(ct, "wal_checkpoint", "succeeded").await;
    run_action(ct, "integrity_check", "succeeded").await;
    run_action(ct, "vacuum", "skipped").await; // off until enabled
    for _ in 0..3 {
        run_action(ct, "command:fail", "failed").await;
    }
    let m = ct.metrics().await;
    let breaker = |action| value(&m, "caretaker_action_breaker_open", &[("action", action)]);
    assert_eq!(breaker("command:fail"), Some(1.0), "three failures open it");
    assert_eq!(breaker("wal_checkpoint"), Some(0.0));
    for (name, labels) in [
        (
            "caretaker_remediation_resolved_total",
            ("action", "wal_checkpoint"),
        ),
        (
            "caretaker_remediation_unresolved_total",
            ("action", "wal_checkpoint"),
        ),
        ("caretaker_alerts_ignored_total", ("reason", "unmatched")),
        (
            "caretaker_alerts_ignored_total",
            ("reason", "other_instance"),
        ),
        ("caretaker_auth_failures_total", ("reason", "wrong")),
    ] {
        assert_eq!(value(&m, name, &[labels]), Some(1.0), "{name}");
    }
}

/// The value of an instant query's result.
pub async fn query(client: &reqwest::Client, base: &str, q: &str) -> Value {
    let body: Value = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["status"], "success",
        "Prometheus refuses {q:?}: {body}"
    );
    body["data"].clone()
}
