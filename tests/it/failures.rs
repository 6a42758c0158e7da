//! A missing, corrupt or half-broken database is reported, never fatal, and
//! never "fixed" by caretaker creating or touching files.

use std::time::Duration;

use crate::common::{create_db, value, Caretaker};

const TWO_DATABASES: &str = r#"
[[database]]
name = "good"
path = "good.db"

[[database]]
name = "missing"
path = "missing.db"

[[database]]
name = "garbage"
path = "garbage.db"

[[database]]
name = "truncated"
path = "truncated.db"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_databases_are_down_and_the_rest_keeps_reporting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = create_db(&dir.path().join("good.db"));
    good.execute("INSERT INTO patterns (id, type, pattern_data, created_at) VALUES ('a', 't', 'd', datetime('now'))", [])
        .expect("insert");
    std::fs::write(dir.path().join("garbage.db"), vec![0x5au8; 8192]).expect("garbage");
    // A real database cut in half: the header is valid, the pages are not all there.
    {
        let t = create_db(&dir.path().join("full.db"));
        t.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO patterns (id, type, pattern_data, created_at) SELECT 'p' || i, 't', hex(randomblob(100)), datetime('now') FROM n;",
        )
        .expect("fill");
    }
    let bytes = std::fs::read(dir.path().join("full.db")).expect("read");
    std::fs::write(dir.path().join("truncated.db"), &bytes[..bytes.len() / 2]).expect("truncate");

    let ct = Caretaker::start(dir, TWO_DATABASES).await;
    let m = ct
        .wait_for(
            "integrity of every database",
            Duration::from_secs(20),
            |m| {
                ["good", "missing", "garbage", "truncated"]
                    .iter()
                    .all(|db| {
                        value(
                            m,
                            "caretaker_collector_success",
                            &[("collector", "integrity"), ("database", db)],
                        )
                        .is_some()
                    })
            },
        )
        .await;
    let up = |db: &str| value(&m, "caretaker_database_up", &[("database", db)]);
    assert_eq!(up("good"), Some(1.0));
    assert_eq!(up("missing"), Some(0.0));
    assert_eq!(up("garbage"), Some(0.0));
    assert_eq!(
        value(
            &m,
            "caretaker_table_rows",
            &[("database", "good"), ("table", "patterns")]
        ),
        Some(1.0)
    );
    assert!(value(&m, "caretaker_host_memory_total_bytes", &[]).expect("host still reports") > 0.0);
    let success = |c: &str, db: &str| {
        value(
            &m,
            "caretaker_collector_success",
            &[("collector", c), ("database", db)],
        )
    };
    assert_eq!(success("patterns", "missing"), Some(0.0));
    assert_eq!(success("patterns", "garbage"), Some(0.0));
    assert_eq!(success("patterns", "good"), Some(1.0));
    // The truncated file opens, but its check must not pass.
    let truncated_ok = value(
        &m,
        "caretaker_database_integrity_ok",
        &[("database", "truncated")],
    );
    assert!(
        truncated_ok == Some(0.0) || success("integrity", "truncated") == Some(0.0),
        "a truncated database never reports integrity ok: {truncated_ok:?}"
    );
    assert!(
        !ct.dir.path().join("missing.db").exists(),
        "caretaker never creates a missing database"
    );
    assert_eq!(
        std::fs::read(ct.dir.path().join("garbage.db")).expect("read"),
        vec![0x5au8; 8192],
        "files are never modified"
    );

    // The missing database appears: caretaker notices without a restart.
    let late = create_db(&ct.dir.path().join("missing.db"));
    drop(late);
    ct.wait_for(
        "the new database to come up",
        Duration::from_secs(20),
        |m| value(m, "caretaker_database_up", &[("database", "missing")]) == Some(1.0),
    )
    .await;
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_write_transaction_does_not_stall_collection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = create_db(&dir.path().join("memory.db"));
    conn.execute_batch("PRAGMA journal_mode=WAL;").expect("wal");
    conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO patterns (id, type, pattern_data, created_at) VALUES ('x', 't', 'd', datetime('now'));")
        .expect("hold a write transaction");
    let ct = Caretaker::start(
        dir,
        "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n",
    )
    .await;
    let m = ct.metrics().await;
    assert_eq!(value(&m, "caretaker_database_up", &[]), Some(1.0));
    // Readers see the last committed state, not the open transaction.
    assert_eq!(
        value(&m, "caretaker_table_rows", &[("table", "patterns")]),
        Some(0.0)
    );
    conn.execute_batch("COMMIT")
        .expect("the writer commits unhindered");
    ct.stop().await;
}
