//! Keeping `[[discover]]` current: every [`RESCAN`] the globs are matched
//! again, and when what they match has changed the configuration is reloaded
//! through the same path as an edit of the file, so new databases get their
//! collectors, backups, schedules and rules and vanished ones lose their
//! series. The rescan is the safety net that holds on every filesystem.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Runtime;
use crate::config::discover::{self, DiscoverReport};
use crate::config::Config;
use crate::metrics::MetricSet;

/// How often the globs are matched again (new files show within this).
pub const RESCAN: Duration = Duration::from_secs(5);

/// What the globs match now, or `None` when that cannot be told.
fn rescan(config: &Config) -> Option<Vec<DiscoverReport>> {
    let discovered: Vec<&PathBuf> = config
        .discovered
        .iter()
        .flat_map(|r| r.databases.iter().map(|(_, p)| p))
        .collect();
    let explicit: Vec<(String, PathBuf)> = config
        .databases
        .iter()
        .filter(|d| !discovered.contains(&&d.path))
        .map(|d| (d.name.clone(), d.path.clone()))
        .collect();
    discover::generate(&config.discover, &explicit)
        .ok()
        .map(|(_, reports)| reports)
}

/// Reloads whenever the globs match something else, until cancelled.
pub(super) async fn discovery_loop(runtime: Arc<Runtime>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(RESCAN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let config = runtime.config();
        if config.discover.is_empty() {
            continue;
        }
        let scanned = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || rescan(&config)).await
        };
        if let Ok(Some(now)) = scanned {
            if now != config.discovered {
                tracing::info!("discovered databases changed; reloading the configuration");
                runtime.reload().await;
            }
        }
    }
}

/// The discovery metrics of `config`, counting its refusals into `errors`
/// (and logging them once per configuration applied).
pub(super) fn publish(config: &Config, errors: &mut BTreeMap<String, u64>) -> MetricSet {
    let mut set = MetricSet::new();
    for report in &config.discovered {
        for refused in &report.refused {
            tracing::error!(discover = %report.label, "{refused}");
        }
        let total = errors.entry(report.label.clone()).or_default();
        *total += report.refused.len() as u64;
        let labels = || vec![("discover", report.label.clone())];
        set.gauge(
            "caretaker_discovered_databases",
            "Databases a [[discover]] glob matched and caretaker took, by glob",
            labels(),
            report.databases.len() as f64,
        );
        set.counter(
            "caretaker_discovery_errors",
            "Discovered paths refused (two paths for one name, a name taken by a [[database]]), by glob",
            labels(),
            *total as f64,
        );
    }
    set
}
