//! Promises about integrity and hand-run actions: a damaged database is a
//! failed check (never a missing one), a check run from a shell reaches the
//! running daemon, the responder's series exist from the first scrape, and a
//! person may run vacuum outside its window on purpose.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use rusqlite::Connection;

use crate::common::{create_db, value, Caretaker, Sample};

/// A database of `memory.db` with enough patterns for a multi-level index, in
/// WAL mode and checkpointed, so every page is in the main file.
fn filled_db(path: &Path) {
    let conn = create_db(path);
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO patterns (id, type, pattern_data, created_at)
           SELECT 'p' || i, 't', hex(randomblob(60)), datetime('now') FROM n;
         INSERT INTO pattern_embeddings (pattern_id, embedding, dimension, created_at)
           SELECT id, randomblob(32), 8, created_at FROM patterns;
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .expect("fill");
}

/// Overwrites the body of the root page of the `patterns` primary-key index
/// (found in `sqlite_schema`), keeping its 8-byte header: its cell pointers
/// become garbage, which SQLite reports while it checks the index.
fn damage_patterns_index(path: &Path) {
    let (root, page_size): (i64, i64) = {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint");
        let root = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'patterns' AND name LIKE 'sqlite_autoindex_%'",
                [],
                |r| r.get(0),
            )
            .expect("index root page");
        let size = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .expect("page size");
        (root, size)
    };
    assert!(root > 1, "an index never lives on page 1");
    let mut bytes = std::fs::read(path).expect("read db");
    let start = ((root - 1) * page_size) as usize;
    let end = start + page_size as usize;
    bytes[start + 8..end].fill(0xa5);
    std::fs::write(path, bytes).expect("write damaged db");
}

fn integrity_ok(m: &[Sample]) -> Option<f64> {
    value(
        m,
        "caretaker_database_integrity_ok",
        &[("database", "memory")],
    )
}

/// Runs the real binary (another process) with `args` after `run`.
async fn caretaker_run(config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_caretaker"));
    cmd.arg("run")
        .args(args)
        .arg(format!("--config.file={}", config.display()));
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run caretaker")
}

fn job_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "job JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const ONE_DATABASE: &str = "[collect]\ndatabase_interval = \"1s\"\n\n[[database]]\nname = \"memory\"\npath = \"memory.db\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_page_is_a_failed_check_not_a_missing_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("memory.db");
    filled_db(&db);
    damage_patterns_index(&db);
    let ct = Caretaker::start(dir, ONE_DATABASE).await;
    let m = ct
        .wait_for("the first integrity check", Duration::from_secs(30), |m| {
            value(
                m,
                "caretaker_collector_success",
                &[("collector", "integrity"), ("database", "memory")],
            )
            .is_some()
        })
        .await;
    assert_eq!(
        value(
            &m,
            "caretaker_collector_success",
            &[("collector", "integrity"), ("database", "memory")]
        ),
        Some(1.0),
        "the check ran: what it found is its result"
    );
    assert_eq!(
        integrity_ok(&m),
        Some(0.0),
        "a damaged index fails the check"
    );
    let stamp = value(
        &m,
        "caretaker_database_integrity_check_timestamp_seconds",
        &[("database", "memory")],
    );
    assert!(
        stamp.is_some_and(|t| t > 0.0),
        "CaretakerIntegrityCheckFailed needs a check time: {stamp:?}"
    );
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integrity_check_action_reports_a_damaged_page_as_its_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("memory.db");
    filled_db(&db);
    damage_patterns_index(&db);
    let config = dir.path().join("caretaker.toml");
    std::fs::write(&config, ONE_DATABASE).expect("config");
    let out = caretaker_run(&config, &["integrity_check"]).await;
    let job = job_of(&out);
    assert_eq!(job["status"], "succeeded", "the check ran: {job}");
    assert_eq!(job["outcome"]["figures"]["integrity_ok"], 0.0, "{job}");
    assert!(
        job["outcome"]["figures"]["problems"].as_f64() >= Some(1.0),
        "{job}"
    );
    let summary = job["outcome"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("integrity check found problems"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_run_from_a_shell_reaches_the_running_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("memory.db");
    filled_db(&db);
    let sound = std::fs::read(&db).expect("read sound db");
    let ct = Caretaker::start(dir, ONE_DATABASE).await;
    ct.wait_for("a passing check", Duration::from_secs(30), |m| {
        integrity_ok(m) == Some(1.0)
    })
    .await;

    damage_patterns_index(&db);
    let out = caretaker_run(&ct.config_path, &["integrity_check"]).await;
    let job = job_of(&out);
    assert_eq!(job["status"], "succeeded", "the check ran: {job}");
    assert_eq!(job["outcome"]["figures"]["integrity_ok"], 0.0, "{job}");
    let summary = job["outcome"]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("malformed") || summary.contains("page"),
        "the problems are named: {summary}"
    );
    ct.wait_for(
        "the shell's failed check in the daemon",
        Duration::from_secs(20),
        |m| integrity_ok(m) == Some(0.0),
    )
    .await;

    std::fs::write(&db, &sound).expect("repair");
    let out = caretaker_run(&ct.config_path, &["integrity_check"]).await;
    assert_eq!(job_of(&out)["outcome"]["figures"]["integrity_ok"], 1.0);
    ct.wait_for(
        "the shell's passing check in the daemon",
        Duration::from_secs(20),
        |m| integrity_ok(m) == Some(1.0),
    )
    .await;
    ct.stop().await;
}

const ONE_RULE: &str = r#"
[[database]]
name = "memory"
path = "memory.db"

[[rule]]
name = "purge"
matchers = ['alertname="CaretakerExpiredEntriesHigh"']
actions = ["purge_expired"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_responder_series_of_a_rule_exist_before_any_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(create_db(&dir.path().join("memory.db")));
    let ct = Caretaker::start(dir, ONE_RULE).await;
    let m = ct.metrics().await;
    let pair = [("action", "purge_expired"), ("database", "memory")];
    assert_eq!(value(&m, "caretaker_action_breaker_open", &pair), Some(0.0));
    for reason in ["cooldown", "breaker", "refused"] {
        let labels = [pair[0], pair[1], ("reason", reason)];
        assert_eq!(
            value(&m, "caretaker_action_skipped_total", &labels),
            Some(0.0),
            "{reason}"
        );
    }
    let failures = [pair[0], pair[1], ("result", "failure")];
    assert_eq!(
        value(&m, "caretaker_action_runs_total", &failures),
        Some(0.0)
    );
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_open_before_a_restart_is_open_from_the_first_scrape() {
    use caretaker::responder::state::{NewJob, Recorded, StateStore};
    let dir = tempfile::tempdir().expect("tempdir");
    drop(create_db(&dir.path().join("memory.db")));
    let state = dir.path().join("state/caretaker-state.db");
    {
        let (store, _) = StateStore::open(&state, 1.0).expect("state");
        // Three failures in a row: the default breaker_failures.
        for i in 0..3 {
            let job = NewJob {
                key: format!("webhook/failed/{i}"),
                source: caretaker::responder::job::JobSource::Webhook,
                action: "purge_expired".into(),
                database: "memory".into(),
                ..Default::default()
            };
            let at = 100.0 + f64::from(i);
            let Some(Recorded::New(id)) = store.record(&[job], &[], at).expect("record").pop()
            else {
                panic!("not recorded")
            };
            store
                .claim(id, "purge_expired", "memory", at, |_| None::<()>)
                .expect("running");
            store
                .finish(
                    id,
                    caretaker::responder::job::JobStatus::Failed,
                    None,
                    None,
                    Some("failed"),
                    at,
                )
                .expect("finish");
        }
    }
    let ct = Caretaker::start(dir, ONE_RULE).await;
    let m = ct.metrics().await;
    assert_eq!(
        value(
            &m,
            "caretaker_action_breaker_open",
            &[("action", "purge_expired"), ("database", "memory")]
        ),
        Some(1.0)
    );
    ct.stop().await;
}

/// A configuration whose vacuum window is closed now: it opens two hours from now.
fn closed_window_config() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let minute = (now % 86_400) / 60;
    let hm = |m: u64| format!("{:02}:{:02}", (m % 1440) / 60, m % 60);
    format!(
        "[web]\ntoken_file = \"token\"\n\n[[database]]\nname = \"memory\"\npath = \"memory.db\"\n\
         [database.vacuum]\nenabled = true\nwindow = \"{}-{}\"\n",
        hm(minute + 120),
        hm(minute + 180)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vacuum_by_hand_may_override_the_window_and_the_audit_says_so() {
    use crate::responder::{write_token, TOKEN};
    let dir = tempfile::tempdir().expect("tempdir");
    filled_db(&dir.path().join("memory.db"));
    write_token(dir.path());
    let ct = Caretaker::start(dir, &closed_window_config()).await;

    let refused = caretaker_run(&ct.config_path, &["vacuum"]).await;
    assert_eq!(refused.status.code(), Some(2), "a refusal is a skip");
    let job = job_of(&refused);
    let why = job["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("--ignore-window"),
        "the refusal names the way out: {why}"
    );

    let wrong = caretaker_run(&ct.config_path, &["analyze", "--ignore-window"]).await;
    assert!(!wrong.status.success(), "the flag is for vacuum only");
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("vacuum only"));

    let forced = caretaker_run(&ct.config_path, &["vacuum", "--ignore-window"]).await;
    let job = job_of(&forced);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["ignore_window"], true, "{job}");

    let api = |query: &str| {
        ct.client
            .post(format!("{}/api/v1/actions/vacuum?{query}", ct.base))
            .bearer_auth(TOKEN)
            .send()
    };
    let answer: serde_json::Value = api("wait=true")
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["job"]["reason"], "refused", "{answer}");
    let answer: serde_json::Value = api("wait=true&ignore_window=true")
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["job"]["status"], "succeeded", "{answer}");
    let api_job = answer["job"]["id"].as_i64();

    let audit = ct.audit_events().await;
    let overrides: Vec<_> = audit
        .iter()
        .filter(|e| e["event"] == "override" && e["reason"] == "ignore_window")
        .map(|e| e["job_id"].as_i64())
        .collect();
    assert_eq!(overrides.len(), 2, "both overrides are audited: {audit:?}");
    assert!(overrides.contains(&api_job), "{audit:?}");
    ct.stop().await;
}
