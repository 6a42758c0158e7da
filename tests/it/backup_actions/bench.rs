//! The backup of a 100,000-pattern database against seed 001's
//! `sqlite3 .backup` + `gzip` + `sha256sum`. Ignored by default; run with
//! `cargo test --release --test it backup_bench -- --ignored --nocapture`.

use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime};

use caretaker::actions::backup::Backup;
use caretaker::actions::verify_backups::VerifyBackups;
use caretaker::config::Compression;

use super::{database, run};
use crate::common::create_db;

/// 100,000 patterns with JSON-like data and a 512-byte embedding each.
fn generate(path: &Path) {
    let conn = create_db(path);
    conn.pragma_update(None, "journal_mode", "wal")
        .expect("wal");
    conn.execute_batch(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < 100000)
         INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at, last_used, category)
         SELECT printf('p%08d', i), 'type' || (i % 12),
                json_object('goal', 'task ' || (i % 997), 'steps', json_array('plan', 'act', 'verify'),
                            'context', hex(randomblob(160)), 'notes', substr(hex(zeroblob(200)), 1, 200)),
                (i % 100) / 100.0, i % 9, datetime('now', '-' || (i % 400) || ' days'),
                datetime('now', '-' || (i % 90) || ' days'), 'cat' || (i % 20)
         FROM n;
         INSERT INTO pattern_embeddings (pattern_id, embedding, dimension, created_at)
         SELECT id, randomblob(512), 128, created_at FROM patterns;
         COMMIT;",
    )
    .expect("generate");
}

fn timed(what: &str, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    let s = t.elapsed().as_secs_f64();
    println!("{what}: {s:.2} s");
    s
}

fn sh(dir: &Path, script: &str) {
    let status = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .status()
        .expect("sh");
    assert!(status.success(), "{script}");
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn backup_bench() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    timed("generate 100k patterns", || generate(&db.path));
    let size = std::fs::metadata(&db.path).expect("meta").len();
    println!("database: {size} bytes");

    let outcome = run(&Backup, &db, SystemTime::now()).expect("zstd backup");
    println!("caretaker backup (zstd level 3, quick_check): {outcome:?}");
    timed("caretaker verify_backups (1 backup)", || {
        run(&VerifyBackups, &db, SystemTime::now()).expect("verify");
    });
    // Like for like with the runbook: gzip and a full integrity_check.
    let mut gz = database(dir.path(), Compression::Gzip);
    if let Some(b) = gz.backup.as_mut() {
        b.verify = caretaker::config::IntegrityMode::Full;
    }
    let outcome = run(
        &Backup,
        &gz,
        SystemTime::now() + std::time::Duration::from_secs(1),
    )
    .expect("gzip backup");
    println!("caretaker backup (gzip level 6, integrity_check): {outcome:?}");

    if Command::new("sqlite3").arg("--version").output().is_err() {
        println!("no sqlite3 CLI: the runbook's pipeline was not measured");
        return;
    }
    let d = dir.path();
    let total = timed("sqlite3 .backup", || {
        sh(d, "sqlite3 memory.db \".backup 'seed.backup'\"")
    }) + timed("  + sqlite3 integrity_check", || {
        sh(
            d,
            "sqlite3 seed.backup 'PRAGMA integrity_check;' | grep -q ok",
        )
    }) + timed("  + gzip", || sh(d, "gzip seed.backup"))
        + timed("  + sha256sum", || {
            sh(d, "sha256sum seed.backup.gz > seed.backup.gz.sha256")
        });
    println!("runbook pipeline total: {total:.2} s");
    let gz_size = std::fs::metadata(d.join("seed.backup.gz"))
        .expect("meta")
        .len();
    println!("runbook gzip size: {gz_size} bytes");
}
