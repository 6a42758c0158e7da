//! `caretaker collect --once`: one timed collection, printed as JSON.
//!
//! A diagnostic for benchmarks and slow-collection reports: it builds the same
//! jobs as the daemon ([`crate::collector::runner::jobs_for`]), runs the chosen
//! collectors once each, one after the other in this thread, and prints how
//! long each took and how many series it produced. Nothing is served and no
//! state is written.

use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::collector::runner::jobs_for;
use crate::config::Config;

/// The collectors that compute the seed runbooks' database and pattern figures.
pub const SEED_FIGURES: [&str; 3] = ["database", "patterns", "activity"];

/// Runs each job whose collector is in `names` (every job when empty) once and
/// returns `{"collectors": [{collector, database, seconds, series, ok}], "total_seconds"}`.
pub fn collect_once(config: &Config, names: &[String]) -> Value {
    let started = Instant::now();
    let mut results = Vec::new();
    for job in jobs_for(config) {
        let name = job.collector.name();
        if !names.is_empty() && !names.iter().any(|n| n == name) {
            continue;
        }
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
        results.push(Value::Object(entry));
    }
    json!({
        "collectors": results,
        "total_seconds": started.elapsed().as_secs_f64(),
    })
}
