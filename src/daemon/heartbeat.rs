//! The heartbeat: a dead man's switch that is requested only while all is well.
//!
//! Alerts need a working Prometheus, Alertmanager and caretaker to be sent.
//! The heartbeat turns that around: every `web.heartbeat_interval` caretaker
//! requests `web.heartbeat_url` (healthchecks.io, Dead Man's Snitch, a cron
//! monitor), and only while every database is up, no collector is failing and
//! no backup is failing. A service that stops hearing from it pages someone,
//! whether caretaker, its host or the whole monitoring path went quiet.
//!
//! Which condition withholds the heartbeat is [`withheld`], a plain function
//! of the snapshot and the last backup jobs; [`run`] is the loop around it.
//! The URL is a credential: it is never logged, counted or shown, and
//! reqwest's errors lose it (`without_url`) before they are logged.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::actions::kind::ActionKind;
use crate::config::{Config, HeartbeatUrl};
use crate::metrics::{unix_seconds, MetricSet, Snapshot, SourceKey};
use crate::responder::job::JobStatus;
use crate::responder::notifier::without_url;

use super::Runtime;

/// The longest a heartbeat request may take (shorter with a shorter interval).
const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a heartbeat was not sent; the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// Not every source has been collected once yet.
    NotReady,
    DatabaseDown,
    CollectorFailing,
    /// No verified backup, the newest one overdue or unverified, or the last
    /// `backup` job failed.
    BackupFailing,
    /// The state database (the last backup jobs) could not be read.
    CannotTell,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::NotReady,
        Reason::DatabaseDown,
        Reason::CollectorFailing,
        Reason::BackupFailing,
        Reason::CannotTell,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotReady => "not_ready",
            Reason::DatabaseDown => "database_down",
            Reason::CollectorFailing => "collector_failing",
            Reason::BackupFailing => "backup_failing",
            Reason::CannotTell => "cannot_tell",
        }
    }
}

/// A withheld heartbeat: the first reason found, and the database it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withheld {
    pub reason: Reason,
    pub database: Option<String>,
}

/// Whether the heartbeat must be withheld now, and why. `failed_backups`
/// names the databases whose last finished `backup` job failed.
pub fn withheld(
    config: &Config,
    snapshot: &Snapshot,
    ready: bool,
    failed_backups: &BTreeSet<String>,
    now: SystemTime,
) -> Option<Withheld> {
    let stop = |reason, database: Option<&str>| {
        Some(Withheld {
            reason,
            database: database.map(str::to_string),
        })
    };
    if !ready {
        return stop(Reason::NotReady, None);
    }
    for db in &config.databases {
        let key = SourceKey::new("database", Some(&db.name));
        if snapshot.value(&key, "caretaker_database_up", &[]) != Some(1.0) {
            return stop(Reason::DatabaseDown, Some(&db.name));
        }
    }
    if let Some((key, _)) = snapshot.statuses().into_iter().find(|(_, s)| !s.ok) {
        return stop(Reason::CollectorFailing, key.database.as_deref());
    }
    let now = unix_seconds(now);
    for db in &config.databases {
        let Some(backup) = &db.backup else { continue };
        let key = SourceKey::new("backups", Some(&db.name));
        let value = |name| snapshot.value(&key, name, &[]);
        let overdue = value("caretaker_backup_last_success_timestamp_seconds")
            .is_some_and(|t| now - t > backup.max_age.as_secs_f64());
        if value("caretaker_backup_files") == Some(0.0)
            || value("caretaker_backup_last_verified_ok") == Some(0.0)
            || overdue
            || failed_backups.contains(&db.name)
        {
            return stop(Reason::BackupFailing, Some(&db.name));
        }
    }
    None
}

/// What the loop has done so far, published as metrics.
#[derive(Debug, Default)]
struct Counts {
    sent: u64,
    failed: u64,
    withheld: [u64; Reason::ALL.len()],
    last_success: Option<SystemTime>,
}

impl Counts {
    fn metrics(&self) -> MetricSet {
        let mut set = MetricSet::new();
        for (result, n) in [("success", self.sent), ("failure", self.failed)] {
            set.counter(
                "caretaker_heartbeat_requests",
                "Heartbeat requests to web.heartbeat_url, by result (success: a 2xx answer)",
                vec![("result", result.to_string())],
                n as f64,
            );
        }
        for (reason, n) in Reason::ALL.iter().zip(self.withheld) {
            set.counter(
                "caretaker_heartbeat_withheld",
                "Heartbeats not sent because something needs attention, by reason",
                vec![("reason", reason.as_str().to_string())],
                n as f64,
            );
        }
        if let Some(t) = self.last_success {
            set.gauge(
                "caretaker_heartbeat_last_success_timestamp_seconds",
                "When web.heartbeat_url last answered 2xx, as a Unix timestamp",
                vec![],
                unix_seconds(t),
            );
        }
        set
    }
}

/// The databases whose last finished `backup` job failed, from the state
/// database (shared with `caretaker run backup` in a shell).
async fn failed_backups(runtime: &Runtime) -> Option<BTreeSet<String>> {
    let store = runtime.responder.executor.state.clone();
    let jobs =
        tokio::task::spawn_blocking(move || store.latest_finished(&[ActionKind::Backup], 0.0))
            .await;
    match jobs {
        Ok(Ok(jobs)) => Some(
            jobs.into_iter()
                .filter(|j| j.status == JobStatus::Failed)
                .map(|j| j.database)
                .collect(),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "heartbeat: cannot read the last backup jobs");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat: state reading task failed");
            None
        }
    }
}

/// Requests `url` once; true on a 2xx answer. Logs failures without the URL.
async fn send(runtime: &Runtime, url: &HeartbeatUrl, interval: Duration) -> bool {
    let timeout = interval.min(MAX_TIMEOUT);
    let request = runtime.http.get(url.url().clone()).timeout(timeout).send();
    let answer = tokio::select! {
        _ = runtime.cancel.cancelled() => return false,
        answer = request => answer,
    };
    match answer {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            tracing::warn!(status = %r.status(), "heartbeat refused");
            false
        }
        Err(e) => {
            tracing::warn!(error = %without_url(e), "heartbeat failed");
            false
        }
    }
}

/// Requests the heartbeat every interval while all is well, until cancelled.
/// Reads the configuration at each tick, so a reload turns it on, off or
/// elsewhere.
pub(super) async fn run(runtime: Arc<Runtime>) {
    let mut counts = Counts::default();
    let mut last: Option<Withheld> = None;
    let mut published = false;
    loop {
        let config = runtime.config();
        let interval = config.web.heartbeat_interval;
        if let Some(url) = &config.web.heartbeat_url {
            let verdict = match failed_backups(&runtime).await {
                Some(failed) => withheld(
                    &config,
                    &runtime.snapshot,
                    runtime.ready(),
                    &failed,
                    SystemTime::now(),
                ),
                None => Some(Withheld {
                    reason: Reason::CannotTell,
                    database: None,
                }),
            };
            match &verdict {
                Some(w) => {
                    if last.as_ref() != Some(w) {
                        tracing::info!(
                            reason = w.reason.as_str(),
                            database = w.database.as_deref().unwrap_or(""),
                            "heartbeat withheld"
                        );
                    }
                    counts.withheld[w.reason as usize] += 1;
                }
                None => {
                    if last.is_some() {
                        tracing::info!("heartbeat resumed: all is well");
                    }
                    if send(&runtime, url, interval).await {
                        counts.sent += 1;
                        counts.last_success = Some(SystemTime::now());
                    } else {
                        counts.failed += 1;
                    }
                }
            }
            last = verdict;
            runtime.snapshot.set_fixed("heartbeat", counts.metrics());
            published = true;
        } else if published {
            runtime.snapshot.set_fixed("heartbeat", MetricSet::new());
            published = false;
        }
        tokio::select! {
            _ = runtime.cancel.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
#[path = "heartbeat_tests.rs"]
mod tests;
