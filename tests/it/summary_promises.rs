//! `detail = "summary"`: the same files published in full and in summary, side
//! by side in one caretaker. The summary has every health, size, backup and
//! responder series of the full output, none of the breakdowns by pattern
//! type, category, agent or task type (they are summed, averages weighted),
//! no application metrics, and collector health only while a collector
//! fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::common::{create_db, Caretaker, Sample};

/// The labels a summary sums away.
const FOLDED: [&str; 4] = ["pattern_type", "category", "agent", "task_type"];
/// The one action `CONFIG`'s rule names.
const RULE_ACTION: &str = "purge_expired";
/// Left out of a summary: latest values of different metrics do not add up
/// (`caretaker_app_metric`); the categories' one sum would repeat the
/// patterns' row count; collector health shows only while a collector fails.
const LEFT_OUT: [&str; 5] = [
    "caretaker_app_metric",
    "caretaker_patterns_by_category",
    "caretaker_collector_success",
    "caretaker_collector_duration_seconds",
    "caretaker_collector_last_success_timestamp_seconds",
];

const CONFIG: &str = r#"
[[database]]
name = "full-odd"
path = "full/odd.db"
[database.backup]
dir = "backups/full-odd"

[[database]]
name = "full-large"
path = "full/large.db"
[database.backup]
dir = "backups/full-large"

[[database]]
name = "full-drifted"
path = "full/drifted.db"
[database.backup]
dir = "backups/full-drifted"

[[database]]
name = "summary-drifted"
path = "listed/drifted.db"
detail = "summary"
[database.backup]
dir = "backups/summary-drifted"

[[discover]]
glob = "summary/*.db"
name = "summary-{1}"
detail = "summary"
[discover.backup]
dir = "backups/summary-{1}"

[[rule]]
name = "purge"
matchers = ['alertname="CaretakerExpiredEntriesHigh"']
actions = ["purge_expired"]
"#;

/// Rows of every shape the generators know, in three files: awkward text
/// and NULLs; rows large enough to spill into overflow pages; a schema that
/// drifted (an extra column, numbers as types, two tables missing).
fn shapes(dir: &Path) {
    std::fs::create_dir_all(dir.join("full")).expect("mkdir");
    crate::figures::fill(&create_db(&dir.join("full/odd.db")));
    let opts = caretaker::demo::generate::GenerateOptions {
        patterns: 400,
        pattern_bytes: 6000,
        ..Default::default()
    };
    caretaker::demo::generate::generate(&dir.join("full/large.db"), &opts).expect("generate");
    let drifted = create_db(&dir.join("full/drifted.db"));
    drifted
        .execute_batch(
            "DROP TABLE verification_history; DROP TABLE task_trajectories;
             ALTER TABLE patterns ADD COLUMN embedding_model TEXT;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
             INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at, category, embedding_model)
             SELECT 'p' || i, i % 4, 'd' || i, (i % 10) / 10.0, i % 7, datetime('now', '-' || i || ' days'),
                    CASE WHEN i % 3 = 0 THEN NULL ELSE 'c' || (i % 5) END, 'm' FROM n;",
        )
        .expect("drift");
    drop(drifted);
    for dest in ["summary/odd.db", "summary/large.db", "listed/drifted.db"] {
        let dest = dir.join(dest);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        let name = dest.file_name().expect("name");
        std::fs::copy(dir.join("full").join(name), &dest).expect("copy");
    }
}

type Key = (String, BTreeMap<String, String>);

/// The series of `database`, without the `database` label.
fn series(m: &[Sample], database: &str) -> BTreeMap<Key, f64> {
    m.iter()
        .filter(|s| s.labels.get("database").map(String::as_str) == Some(database))
        .map(|s| {
            let mut labels = s.labels.clone();
            labels.remove("database");
            ((s.name.clone(), labels), s.value)
        })
        .collect()
}

fn strip(key: &Key) -> Key {
    let mut labels = key.1.clone();
    labels.retain(|k, _| !FOLDED.contains(&k.as_str()));
    (key.0.clone(), labels)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// `Σ average × count / Σ count` over the full series, the counts being
/// `counts` summed over every label but the folded one.
fn weighted(full: &BTreeMap<Key, f64>, average: &str, counts: &str, label: &str) -> Option<f64> {
    let mut per_group: BTreeMap<String, f64> = BTreeMap::new();
    for ((name, labels), v) in full {
        if name == counts {
            *per_group.entry(labels[label].clone()).or_default() += v;
        }
    }
    let (mut sum, mut n) = (0.0, 0.0);
    for ((name, labels), v) in full {
        if name == average {
            let count = per_group[&labels[label]];
            sum += v * count;
            n += count;
        }
    }
    (n > 0.0).then(|| sum / n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_keeps_every_kept_series_and_folds_the_breakdowns() {
    let dir = tempfile::tempdir().expect("tempdir");
    shapes(dir.path());
    let ct = Caretaker::start(dir, CONFIG).await;
    let shapes = ["odd", "large", "drifted"];
    let m = ct
        .wait_for("every integrity check", Duration::from_secs(30), |m| {
            shapes.iter().all(|s| {
                [format!("full-{s}"), format!("summary-{s}")]
                    .iter()
                    .all(|db| {
                        series(m, db).contains_key(&(
                            "caretaker_database_integrity_ok".to_string(),
                            BTreeMap::new(),
                        ))
                    })
            })
        })
        .await;
    for shape in shapes {
        let full = series(&m, &format!("full-{shape}"));
        let summary = series(&m, &format!("summary-{shape}"));
        assert!(
            full.keys().any(|k| k.1.contains_key("pattern_type")),
            "{shape}: the full output has breakdowns to fold"
        );

        // The same series, once the folded labels are summed away, and runs
        // at 0 only for the action the rule names: another action's runs
        // appear at its first run.
        let unnamed_runs = |k: &&Key| {
            k.0 == "caretaker_action_runs_total"
                && k.1.get("action").map(String::as_str) != Some(RULE_ACTION)
        };
        assert!(
            full.keys().any(|k| unnamed_runs(&k)),
            "{shape}: a full database has runs at 0 of every action"
        );
        let want: BTreeSet<Key> = (full.keys())
            .filter(|k| !LEFT_OUT.contains(&k.0.as_str()) && !unnamed_runs(k))
            .map(strip)
            .collect();
        let got: BTreeSet<Key> = summary.keys().cloned().collect();
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{shape}: missing {missing:?}, extra {extra:?}"
        );
        assert!(
            summary.len() < full.len(),
            "{shape}: {} against {}",
            summary.len(),
            full.len()
        );
        for kept in [
            "caretaker_database_size_bytes",
            "caretaker_database_up",
            "caretaker_backup_dir_accessible",
            "caretaker_action_runs_total",
            "caretaker_action_breaker_open",
        ] {
            assert!(got.iter().any(|k| k.0 == kept), "{shape}: {kept} is kept");
        }

        // Counts are the sums of their breakdowns; the database's own figures are the same.
        for (key, v) in &summary {
            let is = |n: &str| key.0 == n;
            if is("caretaker_patterns")
                || is("caretaker_verifications")
                || is("caretaker_trajectories")
                || key.0.starts_with("caretaker_pattern_") && !key.0.ends_with("_average")
                || is("caretaker_table_rows")
            {
                let sum: f64 = (full.iter())
                    .filter(|(k, _)| strip(k) == *key)
                    .map(|(_, v)| v)
                    .sum();
                assert!(close(*v, sum), "{shape} {key:?}: {v} against {sum}");
            }
        }
        let pairs = [
            (
                "caretaker_pattern_confidence_average",
                "caretaker_patterns",
                "pattern_type",
            ),
            (
                "caretaker_pattern_usage_average",
                "caretaker_patterns",
                "pattern_type",
            ),
            (
                "caretaker_verification_truth_score_average",
                "caretaker_verifications",
                "agent",
            ),
        ];
        for (average, counts, label) in pairs {
            let got = summary.get(&(average.to_string(), BTreeMap::new()));
            let want = weighted(&full, average, counts, label);
            match (got, want) {
                (Some(g), Some(w)) => assert!(close(*g, w), "{shape} {average}: {g} against {w}"),
                (None, None) => assert_eq!(
                    shape, "drifted",
                    "only the drifted file has no verifications"
                ),
                other => panic!("{shape} {average}: {other:?}"),
            }
        }
    }
    // The drifted schema still reads: its patterns are all there, folded.
    let drifted = series(&m, "summary-drifted");
    let total: f64 = drifted
        .iter()
        .filter(|(k, _)| k.0 == "caretaker_patterns")
        .map(|(_, v)| v)
        .sum();
    let conn = Connection::open(ct.dir.path().join("listed/drifted.db")).expect("open");
    let rows: f64 = conn
        .query_row("SELECT COUNT(*) FROM patterns", [], |r| r.get(0))
        .expect("count");
    assert_eq!(total, rows);
    ct.stop().await;
}
