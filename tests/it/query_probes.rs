//! `[[query]]` probes end to end: a running caretaker times them on a real
//! database, a slow one is interrupted at its timeout, values match plain
//! SQL, the output stays strict OpenMetrics, a reload drops a removed
//! probe's series and refuses a bad one, and `check-config` checks them
//! against the real file.

use std::process::Command;
use std::time::Duration;

use caretaker::demo::generate::{generate, GenerateOptions};

use crate::common::{check_config, create_db, value, Caretaker, Sample};

const DB: &str = "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n";

const BY_TYPE: &str = r#"
[[query]]
name = "by_type"
sql = "SELECT type, COUNT(*) AS n FROM patterns GROUP BY type"
interval = "1s"
timeout = "1s"
value = "n"
labels = ["type"]
"#;

/// Runs for hours unless interrupted.
const SLOW: &str = r#"
[[query]]
name = "slow"
sql = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000000) SELECT max(n) AS n FROM c"
interval = "2s"
timeout = "200ms"
"#;

fn count(m: &[Sample], query: &str) -> Option<f64> {
    value(
        m,
        "caretaker_query_duration_seconds_count",
        &[("database", "memory"), ("query", query)],
    )
}

fn has_series_of(m: &[Sample], query: &str) -> bool {
    m.iter().any(|s| {
        s.name.starts_with("caretaker_query_")
            && s.labels.get("query").map(String::as_str) == Some(query)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_timed_interrupted_and_forgotten_on_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("memory.db");
    let opts = GenerateOptions {
        patterns: 2000,
        ..GenerateOptions::default()
    };
    generate(&path, &opts).expect("generate");
    let ct = Caretaker::start(dir, &format!("{DB}{BY_TYPE}{SLOW}")).await;
    let m = ct
        .wait_for(
            "both probes to have run twice",
            Duration::from_secs(30),
            |m| {
                count(m, "by_type").is_some_and(|n| n >= 2.0)
                    && value(
                        m,
                        "caretaker_query_failures_total",
                        &[("query", "slow"), ("reason", "timeout")],
                    )
                    .is_some_and(|n| n >= 2.0)
            },
        )
        .await;
    // The slow probe was stopped at its timeout each time, not at the collection's deadline.
    let runs = count(&m, "slow").expect("slow runs");
    let sum = value(
        &m,
        "caretaker_query_duration_seconds_sum",
        &[("query", "slow")],
    )
    .expect("sum");
    assert!(
        sum >= 0.2 * runs && sum < 1.0 * runs,
        "{sum} s over {runs} runs"
    );
    let under = |le| {
        value(
            &m,
            "caretaker_query_duration_seconds_bucket",
            &[("query", "slow"), ("le", le)],
        )
    };
    assert_eq!(
        under("0.1"),
        Some(0.0),
        "no run of the slow probe under 100 ms"
    );
    assert_eq!(under("+Inf"), Some(runs));
    assert_eq!(
        value(
            &m,
            "caretaker_query_failures_total",
            &[("query", "by_type"), ("reason", "error")]
        ),
        Some(0.0)
    );
    // Its values are what plain SQL says.
    let conn = rusqlite::Connection::open(ct.dir.path().join("memory.db")).expect("open");
    let mut stmt = conn
        .prepare("SELECT type, COUNT(*) FROM patterns GROUP BY type")
        .expect("prepare");
    let rows: Vec<(String, f64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    assert!(rows.len() > 2);
    for (t, n) in &rows {
        let got = value(
            &m,
            "caretaker_query_value",
            &[("query", "by_type"), ("type", t)],
        );
        assert_eq!(got, Some(*n), "type {t}");
    }
    // GROUP BY type reads the type index, not the table.
    assert_eq!(
        value(&m, "caretaker_query_full_scan", &[("query", "by_type")]),
        Some(0.0)
    );
    strict_openmetrics(&ct).await;

    // A bad probe is refused and the running ones keep going.
    let bad = "[[query]]\nname = \"bad\"\nsql = \"DELETE FROM patterns\"\n";
    std::fs::write(&ct.config_path, format!("{DB}{BY_TYPE}{SLOW}{bad}")).expect("rewrite");
    let m = ct
        .wait_for("the reload to be refused", Duration::from_secs(20), |m| {
            value(m, "caretaker_config_last_reload_successful", &[]) == Some(0.0)
        })
        .await;
    assert!(has_series_of(&m, "slow") && !has_series_of(&m, "bad"));

    // Removing a probe removes its series.
    std::fs::write(&ct.config_path, format!("{DB}{BY_TYPE}")).expect("rewrite");
    ct.wait_for("the slow probe to go", Duration::from_secs(20), |m| {
        value(m, "caretaker_config_last_reload_successful", &[]) == Some(1.0)
            && !has_series_of(m, "slow")
            && has_series_of(m, "by_type")
    })
    .await;
    // Removing the last one removes the collector too.
    std::fs::write(&ct.config_path, DB).expect("rewrite");
    ct.wait_for("every probe series to go", Duration::from_secs(20), |m| {
        !m.iter().any(|s| s.name.starts_with("caretaker_query_"))
            && value(m, "caretaker_collector_success", &[("collector", "query")]).is_none()
            && value(
                m,
                "caretaker_collector_success",
                &[("collector", "database")],
            ) == Some(1.0)
    })
    .await;
    ct.stop().await;
}

/// The output with histograms still passes the strict parser, one family each.
async fn strict_openmetrics(ct: &Caretaker) {
    let path = ct.dir.path().join("metrics.txt");
    std::fs::write(&path, ct.metrics_text().await).expect("write");
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(open(sys.argv[1], encoding="utf-8").read()))
names = [f.name for f in families]
assert len(names) == len(set(names)), "duplicate families"
h = [f for f in families if f.name == "caretaker_query_duration_seconds"]
assert len(h) == 1 and h[0].type == "histogram", h
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "strict parser refused the output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_checks_probes_against_the_real_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = create_db(&dir.path().join("memory.db"));
    conn.execute_batch("CREATE TABLE app_cache (k TEXT PRIMARY KEY, hits INTEGER)")
        .expect("app table");
    let config = dir.path().join("caretaker.toml");
    let run = |queries: &str| {
        std::fs::write(&config, format!("{DB}{queries}")).expect("write");
        let out = check_config(&config);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run("[[query]]\nname = \"hits\"\nsql = \"SELECT k, hits FROM app_cache\"\nvalue = \"hits\"\nlabels = [\"k\"]\n");
    assert!(ok, "{text}");
    // The seed schema has no app_cache: only the real database can refuse these.
    let (ok, text) = run("[[query]]\nname = \"wipe\"\nsql = \"DELETE FROM app_cache\"\n");
    assert!(
        !ok && text.contains("query \"wipe\" on database memory") && text.contains("would write"),
        "{text}"
    );
    let (ok, text) = run("[[query]]\nname = \"typo\"\nsql = \"SELECT nope FROM app_cache\"\n");
    assert!(!ok && text.contains("no such column: nope"), "{text}");
    let (ok, text) = run("[[query]]\nname = \"syntax\"\nsql = \"SELEC 1\"\n");
    assert!(
        !ok && text.contains("caretaker.toml:6:7") && text.contains("syntax error"),
        "{text}"
    );
    let before = std::fs::read(dir.path().join("memory.db")).expect("read");
    let (ok, _) = run("[[query]]\nname = \"drop\"\nsql = \"DROP TABLE app_cache\"\n");
    assert!(!ok);
    assert_eq!(
        std::fs::read(dir.path().join("memory.db")).expect("read"),
        before
    );
}

/// The shipped probes, run once on a demo database and on one whose
/// trajectory index was dropped (a drifted schema).
#[test]
fn the_shipped_probes_use_the_seed_indexes_and_find_a_missing_one() {
    use caretaker::collector::query::QueryCollector;
    use caretaker::collector::Collector;
    use caretaker::demo::SEED_PROBES;

    let example = crate::runbook_steps::repo_file("config/caretaker.toml");
    assert!(
        example.contains(SEED_PROBES),
        "config/caretaker.toml ships the seed probes"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("memory.db");
    generate(
        &path,
        &GenerateOptions {
            patterns: 1000,
            ..GenerateOptions::default()
        },
    )
    .expect("generate");
    let config = caretaker::config::Config::parse(
        &dir.path().join("caretaker.toml"),
        &format!("{DB}{SEED_PROBES}"),
    )
    .expect("the shipped probes are valid");
    let names: Vec<&str> = config.queries.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        ["pattern_lookup", "memory_lookup", "recent_trajectories"]
    );
    let run = || {
        let c = QueryCollector::new(&path, config.queries.clone(), 20);
        c.collect(std::time::Instant::now() + c.timeout())
            .expect("collect")
    };
    let set = run();
    for q in &names {
        assert_eq!(
            set.value("caretaker_query_full_scan", &[("query", q)]),
            Some(0.0),
            "{q}"
        );
        assert_eq!(
            set.value(
                "caretaker_query_failures",
                &[("query", q), ("reason", "error")]
            ),
            Some(0.0),
            "{q}"
        );
    }
    rusqlite::Connection::open(&path)
        .and_then(|c| c.execute_batch("DROP INDEX idx_task_trajectories_created"))
        .expect("drift");
    let set = run();
    assert_eq!(
        set.value(
            "caretaker_query_full_scan",
            &[("query", "recent_trajectories")]
        ),
        Some(1.0)
    );
    assert_eq!(
        set.value("caretaker_query_full_scan", &[("query", "pattern_lookup")]),
        Some(0.0)
    );
}
