//! Load: a burst of alert notifications (many duplicates) from concurrent
//! clients against a small queue, and scrapes of `/metrics` meanwhile; then
//! scrapes at about 100/s while a backup and a prune run on a large database.
//!
//! `CARETAKER_LOAD_NOTIFICATIONS` (10,000) and `CARETAKER_LOAD_PATTERNS`
//! (20,000; `scripts/reliability.sh --long` uses 200,000) set the sizes. Each
//! test prints a `RELIABILITY load ...` line with its figures.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use caretaker::demo::generate::{generate, GenerateOptions};
use serde_json::Value;

use crate::common::{parse, value, Caretaker};
use crate::responder::{notification, wal_database, write_token, TOKEN};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (p50, p99, max) in milliseconds.
fn percentiles(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), ms[ms.len() - 1])
}

/// Scrapes `/metrics` every `pause` until `stop`; returns latencies (ms),
/// failed scrapes and the highest queue depth seen.
fn scraper(
    client: reqwest::Client,
    url: String,
    pause: Duration,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(Vec<f64>, usize, f64)> {
    tokio::spawn(async move {
        let (mut lat, mut failed, mut depth) = (Vec::new(), 0, 0f64);
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            match client.get(&url).send().await {
                Ok(r) if r.status() == 200 => match r.text().await {
                    Ok(text) => {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        let d = value(&parse(&text), "caretaker_action_queue_depth", &[]);
                        depth = depth.max(d.unwrap_or(0.0));
                    }
                    Err(_) => failed += 1,
                },
                _ => failed += 1,
            }
            tokio::time::sleep(pause).await;
        }
        (lat, failed, depth)
    })
}

const RULE: &str = r#"
[responder]
queue_size = 500
max_concurrent = 2
breaker_max_runs = 1000000

[[rule]]
name = "load"
matchers = ['alertname="CaretakerLoad"']
actions = ["analyze"]
cooldown = "1ms"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_duplicates_loses_nothing_and_scrapes_stay_fast() {
    let total = env("CARETAKER_LOAD_NOTIFICATIONS", 10_000);
    let distinct = (total / 5).max(1);
    let ct =
        Arc::new(Caretaker::start(wal_database(), &crate::responder::responder_config(RULE)).await);
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = scraper(
        ct.client.clone(),
        format!("{}/metrics", ct.base),
        Duration::ZERO,
        stop.clone(),
    );
    // Every fingerprint 5 times, interleaved so duplicates race each other.
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..total)
            .map(|i| {
                notification(
                    "firing",
                    "CaretakerLoad",
                    &format!("fp{}", i % distinct),
                    "2026-01-01T00:00:00Z",
                )
                .to_string()
            })
            .collect(),
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let (ct, bodies, next) = (ct.clone(), bodies.clone(), next.clone());
            tokio::spawn(async move {
                let (mut accepted, mut duplicates, mut full, mut other) = (0u64, 0u64, 0u64, 0u64);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let r = ct
                        .client
                        .post(format!("{}/hooks/alertmanager", ct.base))
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("POST");
                    match r.status().as_u16() {
                        202 => {
                            let v: Value = r.json().await.expect("json");
                            let (a, d) = (v["accepted"].as_u64(), v["duplicates"].as_u64());
                            accepted += a.unwrap_or(0);
                            duplicates += d.unwrap_or(0);
                            assert_eq!(a.unwrap_or(0) + d.unwrap_or(0), 1, "{v}");
                        }
                        503 => full += 1,
                        _ => other += 1,
                    }
                }
                (accepted, duplicates, full, other)
            })
        })
        .collect();
    let (mut accepted, mut duplicates, mut full, mut other) = (0, 0, 0, 0);
    for c in clients {
        let (a, d, f, o) = c.await.expect("client");
        (accepted, duplicates, full, other) = (accepted + a, duplicates + d, full + f, other + o);
    }
    let burst = started.elapsed();
    let conn =
        rusqlite::Connection::open(ct.dir.path().join("state/caretaker-state.db")).expect("state");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy");
    let count =
        |sql: &str| -> u64 { conn.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql) as u64 };
    let deadline = Instant::now() + Duration::from_secs(120);
    while count("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')") > 0 {
        assert!(Instant::now() < deadline, "jobs did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (lat, failed, depth) = scrapes.await.expect("scraper");
    let recorded = count("SELECT count(*) FROM jobs WHERE source = 'webhook'");
    let per_key = count("SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM jobs GROUP BY fingerprint, starts_at)");
    let unfinished = count("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')");
    let (p50, p99, max) = percentiles(lat.clone());
    eprintln!(
        "RELIABILITY load notifications={total} distinct={distinct} clients=32 seconds={:.1} accepted={accepted} duplicates={duplicates} queue_full={full} other={other} jobs={recorded} max_jobs_per_key={per_key} max_queue_depth={depth} scrapes={} failed_scrapes={failed} scrape_ms_p50={p50:.1} p99={p99:.1} max={max:.1}",
        burst.as_secs_f64(),
        lat.len()
    );
    assert_eq!(other, 0, "only 202 and 503");
    assert_eq!(accepted + duplicates + full, total as u64);
    assert_eq!(recorded, accepted, "every accepted job is recorded");
    assert!(recorded <= distinct as u64);
    assert_eq!(per_key, 1, "duplicates run once");
    assert_eq!(unfinished, 0);
    assert!(depth <= 500.0, "queue depth {depth} beyond queue_size");
    assert_eq!(failed, 0);
    Arc::try_unwrap(ct).ok().expect("sole owner").stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_stay_fast_during_backup_and_prune_of_a_large_database() {
    let patterns = env("CARETAKER_LOAD_PATTERNS", 20_000) as u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("memory.db");
    let t = Instant::now();
    tokio::task::spawn_blocking({
        let db = db.clone();
        move || {
            let opts = GenerateOptions {
                patterns,
                ..GenerateOptions::default()
            };
            generate(&db, &opts).expect("generate");
        }
    })
    .await
    .expect("generate task");
    let generated = t.elapsed();
    write_token(dir.path());
    let config = "[web]\ntoken_file = \"token\"\n[[database]]\nname = \"memory\"\npath = \"memory.db\"\n[database.backup]\ndir = \"backups\"\n[database.prune]\nenabled = true\n";
    let ct = Caretaker::start(dir, config).await;
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = scraper(
        ct.client.clone(),
        format!("{}/metrics", ct.base),
        Duration::from_millis(10),
        stop.clone(),
    );
    let run = |action: &'static str| {
        let (client, base) = (ct.client.clone(), ct.base.clone());
        tokio::spawn(async move {
            let r = client
                .post(format!(
                    "{base}/api/v1/actions/{action}?database=memory&wait=true"
                ))
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("POST");
            let v: Value = r.json().await.expect("json");
            v["job"]["status"].as_str().unwrap_or("?").to_string()
        })
    };
    let t = Instant::now();
    let (backup, prune) = (run("backup"), run("prune_patterns"));
    let (backup, prune) = (backup.await.expect("backup"), prune.await.expect("prune"));
    let actions = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (lat, failed, _) = scrapes.await.expect("scraper");
    let (p50, p99, max) = percentiles(lat.clone());
    eprintln!(
        "RELIABILITY load-actions patterns={patterns} generate_s={:.1} actions_s={:.1} backup={backup} prune={prune} scrapes={} failed_scrapes={failed} scrape_ms_p50={p50:.1} p99={p99:.1} max={max:.1}",
        generated.as_secs_f64(),
        actions.as_secs_f64(),
        lat.len()
    );
    assert_eq!(backup, "succeeded");
    assert_eq!(prune, "succeeded");
    assert_eq!(failed, 0);
    ct.stop().await;
}
