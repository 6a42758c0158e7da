//! Keeping `[[discover]]` current: the folders a glob can match in are
//! watched ([`watch`]), and on every event that could change what it matches,
//! and every `discover_interval` besides (the safety net for filesystems that
//! send no events, such as NFS, and for watches the kernel refused), the
//! globs are matched again. When what they match has changed the
//! configuration is reloaded through the same path as an edit of the file, so
//! new databases get their collectors, backups, schedules and rules and
//! vanished ones lose their series.

mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Runtime;
use crate::config::discover::{self, DiscoverReport};
use crate::config::Config;
use crate::metrics::MetricSet;
use watch::FolderWatch;

/// How long a burst of folder events (a project being unpacked) settles
/// before the globs are matched again.
const SETTLE: Duration = Duration::from_millis(200);

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
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watch = match FolderWatch::new(tx) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the discover folders; globs are matched every discover_interval only");
            None
        }
    };
    loop {
        let config = runtime.config();
        // Watches first, then the scan: a file created after its folder's
        // watch is in place sends an event; one created before is scanned.
        let scanned = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                let folders = watch.as_mut().map(|w| w.update(&config.discover));
                let now = (!config.discover.is_empty())
                    .then(|| rescan(&config))
                    .flatten();
                (watch, folders, now)
            })
            .await
        };
        let now = match scanned {
            Ok((returned, folders, now)) => {
                watch = returned;
                publish_watched(&runtime, &config, folders);
                now
            }
            Err(e) => {
                tracing::error!(error = %e, "the discover scan failed; matching again every discover_interval");
                watch = None;
                None
            }
        };
        if now.is_some_and(|now| now != config.discovered) {
            tracing::info!("discovered databases changed; reloading the configuration");
            if runtime.reload().await {
                // Again at once: the new configuration's folders get watches.
                continue;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(config.collect.discover_interval) => {}
            Some(()) = rx.recv() => {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(SETTLE) => {}
                }
                while rx.try_recv().is_ok() {}
            }
        }
    }
}

/// How many folders are watched for `[[discover]]` (only with entries).
fn publish_watched(runtime: &Runtime, config: &Config, folders: Option<usize>) {
    let mut set = MetricSet::new();
    if !config.discover.is_empty() {
        set.gauge(
            "caretaker_discovery_watched_folders",
            "Folders watched for databases appearing under a [[discover]] glob (0: found every discover_interval only)",
            vec![],
            folders.unwrap_or(0) as f64,
        );
    }
    runtime.snapshot.set_fixed("discovery_watch", set);
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
