//! A database whose file has not changed is not read again, yet every
//! figure stays right: the ones that move with the clock (expired entries,
//! recently used patterns, prune candidates) move while the file stands
//! still, and a write shows at the next pass.

use std::time::{Duration, Instant};

use caretaker::collector::activity::ActivityCollector;
use caretaker::collector::database::DatabaseCollector;
use caretaker::collector::patterns::PatternsCollector;
use caretaker::collector::Collector;
use caretaker::config::PruneConfig;
use caretaker::metrics::MetricSet;
use caretaker::store::stamp::FileStamp;

use crate::common::{create_db, one_database_config, value, Caretaker, Sample};

fn collectors(path: &std::path::Path) -> Vec<Box<dyn Collector>> {
    vec![
        Box::new(PatternsCollector::new(path, 20, PruneConfig::default())),
        Box::new(ActivityCollector::new(path, 20)),
        Box::new(DatabaseCollector::new("memory", path)),
    ]
}

fn collect_all(collectors: &[Box<dyn Collector>], within: Duration) -> Vec<MetricSet> {
    collectors
        .iter()
        .map(|c| {
            c.collect(Instant::now() + within)
                .unwrap_or_else(|e| panic!("{}: {e}", c.name()))
        })
        .collect()
}

#[test]
fn an_unchanged_file_is_not_read_again_and_a_write_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("memory.db");
    let conn = create_db(&path);
    crate::figures::fill(&conn);
    let collectors = collectors(&path);
    let first = collect_all(&collectors, Duration::from_secs(30));

    // A writer holding the exclusive lock: any read of the file now fails
    // (busy until the deadline), so figures that come back were not read.
    conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let second = collect_all(&collectors, Duration::from_millis(300));
    assert_eq!(second, first);
    assert_eq!(
        second[2].value("caretaker_database_up", &[]),
        Some(1.0),
        "not a failed read"
    );

    conn.execute_batch(
        "INSERT INTO memory_entries VALUES ('ns', 'new', 'v', NULL, datetime('now'), NULL);
         UPDATE patterns SET usage_count = 0
           WHERE rowid = (SELECT MIN(rowid) FROM patterns WHERE usage_count > 10); COMMIT;",
    )
    .expect("write");
    let third = collect_all(&collectors, Duration::from_secs(30));
    let rows =
        |sets: &[MetricSet]| sets[1].value("caretaker_table_rows", &[("table", "memory_entries")]);
    assert_eq!(rows(&third), rows(&first).map(|n| n + 1.0));
    let hot = |sets: &[MetricSet]| sets[0].value("caretaker_patterns_hot", &[]);
    assert_eq!(
        hot(&third),
        hot(&first).map(|n| n - 1.0),
        "the patterns were read again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_dependent_figures_move_while_the_file_stands_still() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("memory.db");
    let conn = create_db(&path);
    // Each figure changes 5 s from now with no write: an entry expires, a
    // pattern leaves the last hour, another becomes a prune candidate
    // (unused for 90 days with usage below 3); plus rows that never move.
    conn.execute_batch(
        "INSERT INTO memory_entries VALUES
           ('ns', 'soon', 'v', 5, datetime('now'), datetime('now', '+5 seconds')),
           ('ns', 'later', 'v', 86400, datetime('now'), datetime('now', '+1 day')),
           ('ns', 'never', 'v', NULL, datetime('now'), NULL);
         INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at, last_used) VALUES
           ('recent', 't', 'a', 0.9, 5, datetime('now', '-2 days'), datetime('now', '-3595 seconds')),
           ('aging', 't', 'b', 0.9, 1, datetime('now', '-100 days'), datetime('now', '-7775995 seconds')),
           ('fresh', 't', 'c', 0.9, 5, datetime('now'), datetime('now'));",
    )
    .expect("fill");
    drop(conn);
    let before = FileStamp::read(&path).expect("stamp");
    let ct = Caretaker::start(
        dir,
        &one_database_config("patterns_interval = \"1s\"\ndatabase_interval = \"1s\""),
    )
    .await;
    let figures = |m: &[Sample]| {
        [
            "caretaker_memory_entries_expired",
            "caretaker_patterns_recently_used",
            "caretaker_pattern_prune_candidates",
        ]
        .map(|name| value(m, name, &[("database", "memory")]))
    };
    let m = ct.metrics().await;
    assert_eq!(
        figures(&m),
        [Some(0.0), Some(2.0), Some(0.0)],
        "the start took longer than 5 s"
    );
    let m = ct
        .wait_for(
            "the clock to move the figures",
            Duration::from_secs(15),
            |m| figures(m) == [Some(1.0), Some(1.0), Some(1.0)],
        )
        .await;
    assert_eq!(
        FileStamp::read(&path).expect("stamp"),
        before,
        "no write moved them"
    );

    // A write shows at the next pass.
    let rows = |m: &[Sample]| {
        value(
            m,
            "caretaker_table_rows",
            &[("database", "memory"), ("table", "memory_entries")],
        )
    };
    assert_eq!(rows(&m), Some(3.0));
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute(
        "INSERT INTO memory_entries VALUES ('ns', 'written', 'v', NULL, datetime('now'), NULL)",
        [],
    )
    .expect("write");
    ct.wait_for("the write to show", Duration::from_secs(10), |m| {
        rows(m) == Some(4.0)
    })
    .await;
    ct.stop().await;
}
