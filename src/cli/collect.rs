//! `caretaker collect --once`: one timed collection, printed as JSON.
//!
//! A diagnostic for benchmarks and slow-collection reports: it builds the same
//! jobs as the daemon ([`crate::collector::runner::jobs_for`]), runs the chosen
//! collectors once each, all at the same time on their own threads as the
//! daemon does (each job has its own blocking thread there too), and prints
//! how long each took and how many series it produced. Nothing is served and
//! no state is written.

use std::process::ExitCode;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::collector::runner::{jobs_for, Job};
use crate::config::Config;

/// The collectors that compute the seed runbooks' database and pattern figures.
pub const SEED_FIGURES: [&str; 3] = ["database", "patterns", "activity"];

/// Prints one collection of `collectors` (`all`: every one) as JSON; exit 1
/// when a collector failed.
pub(super) fn collect(config: &Config, collectors: Vec<String>) -> anyhow::Result<ExitCode> {
    let all = collectors.iter().any(|c| c == "all");
    let names = if all { Vec::new() } else { collectors };
    let report = collect_once(config, &names);
    println!("{report}");
    let failed = report["collectors"]
        .as_array()
        .is_some_and(|c| c.iter().any(|e| e["ok"] == false));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs each job whose collector is in `names` (every job when empty) once and
/// returns `{"collectors": [{collector, database, seconds, series, ok}], "total_seconds"}`.
fn collect_once(config: &Config, names: &[String]) -> Value {
    let started = Instant::now();
    let jobs: Vec<_> = jobs_for(config)
        .into_iter()
        .filter(|job| names.is_empty() || names.iter().any(|n| n == job.collector.name()))
        .collect();
    let results: Vec<Value> = std::thread::scope(|scope| {
        let running: Vec<_> = jobs
            .iter()
            .map(|job| scope.spawn(move || run_job(job)))
            .collect();
        running
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| json!({"ok": false, "error": "collector panicked"}))
            })
            .collect()
    });
    json!({
        "collectors": results,
        "total_seconds": started.elapsed().as_secs_f64(),
    })
}

/// One collection of one job, as a JSON entry.
fn run_job(job: &Job) -> Value {
    let name = job.collector.name();
    let t = Instant::now();
    let outcome = job.collector.collect(t + job.timeout);
    let mut entry = Map::new();
    entry.insert("collector".into(), json!(name));
    entry.insert("database".into(), json!(job.database));
    entry.insert("seconds".into(), json!(t.elapsed().as_secs_f64()));
    match outcome {
        Ok(set) => {
            let series: usize = set.families().iter().map(|f| f.samples.len()).sum();
            entry.insert("ok".into(), json!(true));
            entry.insert("series".into(), json!(series));
        }
        Err(e) => {
            entry.insert("ok".into(), json!(false));
            entry.insert("error".into(), json!(e.to_string()));
        }
    }
    Value::Object(entry)
}
