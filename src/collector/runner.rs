//! Runs every collector on its own interval and records what it returns.
//!
//! Each (collector, database) pair is one [`Job`]: a Tokio task that runs the
//! blocking collection in `spawn_blocking` with a deadline, records the result
//! and its duration in the [`Snapshot`], then waits for its interval, an early
//! refresh (an action finished, the backup folder changed) or cancellation.
//! A configuration reload cancels the whole [`Collection`] and starts a new one.
//!
//! At most two collections per core run at once ([`Collection::start`]'s
//! permits): the work is CPU-bound, so more at once finishes no sooner, and
//! at 1,000 databases the 5,000 jobs that start together made Tokio start
//! about 460 blocking threads, each with its stack, SQLite page cache and
//! allocator arena touched; their memory stayed resident after they went
//! idle. A job's deadline starts once it holds a permit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::activity::ActivityCollector;
use super::backups::BackupsCollector;
use super::database::DatabaseCollector;
use super::host::HostCollector;
use super::integrity::IntegrityCollector;
use super::patterns::PatternsCollector;
use super::process::ProcessCollector;
use super::query::QueryCollector;
use super::Collector;
use crate::config::Config;
use crate::metrics::{Snapshot, SourceKey};

/// One collector bound to its database (or to the host) and its schedule.
pub struct Job {
    pub collector: Arc<dyn Collector>,
    pub database: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// A folder whose changes trigger an early collection.
    pub watch: Option<PathBuf>,
    /// Whether `/-/ready` waits for this job's first run.
    pub gates_readiness: bool,
}

impl Job {
    fn key(&self) -> SourceKey {
        SourceKey::new(self.collector.name(), self.database.as_deref())
    }
}

/// The jobs a configuration asks for.
pub fn jobs_for(config: &Config) -> Vec<Job> {
    let c = &config.collect;
    let mut jobs = Vec::new();
    let mut host_paths = config.host_filesystems.clone();
    for db in &config.databases {
        let job = |collector: Arc<dyn Collector>, interval, timeout, gates| Job {
            collector,
            database: Some(db.name.clone()),
            interval,
            timeout,
            watch: None,
            gates_readiness: gates,
        };
        jobs.push(job(
            Arc::new(DatabaseCollector::new(&db.name, &db.path)),
            c.database_interval,
            c.timeout,
            true,
        ));
        let patterns = PatternsCollector::new(&db.path, c.label_limit, db.prune.clone())
            .with_detail(db.detail);
        jobs.push(job(
            Arc::new(patterns),
            c.patterns_interval,
            c.timeout,
            true,
        ));
        let activity = ActivityCollector::new(&db.path, c.label_limit).with_detail(db.detail);
        jobs.push(job(
            Arc::new(activity),
            c.patterns_interval,
            c.timeout,
            true,
        ));
        let integrity = IntegrityCollector::new(&db.name, &db.path, db.integrity_check);
        jobs.push(job(
            Arc::new(integrity),
            c.integrity_interval,
            c.integrity_timeout,
            false,
        ));
        if !config.queries.is_empty() {
            let probes = QueryCollector::new(&db.path, config.queries.clone(), c.label_limit);
            let (tick, timeout) = (probes.tick(), probes.timeout());
            jobs.push(job(Arc::new(probes), tick, timeout, false));
        }
        if let Some(parent) = db.path.parent() {
            host_paths.push(parent.to_path_buf());
        }
        if let Some(backup) = &db.backup {
            let mut j = job(
                Arc::new(
                    BackupsCollector::new(&backup.dir, backup.max_age)
                        .shared(
                            &db.name,
                            crate::backups::names::sharing(config, &db.name, &backup.dir),
                        )
                        .offsite(
                            backup.offsite.as_ref(),
                            &db.name,
                            backup.incremental_interval.is_some(),
                        )
                        .drills(&db.name),
                ),
                c.backups_interval,
                c.timeout,
                true,
            );
            j.watch = Some(backup.dir.clone());
            jobs.push(j);
            host_paths.push(backup.dir.clone());
        }
    }
    let host = |collector: Arc<dyn Collector>, gates| Job {
        collector,
        database: None,
        interval: c.host_interval,
        timeout: c.timeout,
        watch: None,
        gates_readiness: gates,
    };
    jobs.push(host(Arc::new(HostCollector::new(host_paths)), true));
    match ProcessCollector::new() {
        Ok(p) => jobs.push(host(Arc::new(p), false)),
        Err(e) => tracing::warn!(error = %e, "process metrics are unavailable"),
    }
    jobs
}

/// The running jobs of one configuration.
pub struct Collection {
    cancel: CancellationToken,
    tracker: TaskTracker,
    readiness: Vec<SourceKey>,
    refresh: Vec<(SourceKey, Arc<Notify>)>,
}

impl Collection {
    /// Starts every job; they stop when `parent` or [`Collection::stop`] cancels them.
    pub fn start(jobs: Vec<Job>, snapshot: Arc<Snapshot>, parent: &CancellationToken) -> Self {
        let cancel = parent.child_token();
        let tracker = TaskTracker::new();
        let mut readiness = Vec::new();
        let mut refresh = Vec::new();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let permits = Arc::new(Semaphore::new(2 * cores));
        for job in jobs {
            let notify = Arc::new(Notify::new());
            if job.gates_readiness {
                readiness.push(job.key());
            }
            refresh.push((job.key(), notify.clone()));
            let permits = permits.clone();
            tracker.spawn(run(job, snapshot.clone(), notify, permits, cancel.clone()));
        }
        tracker.close();
        Self {
            cancel,
            tracker,
            readiness,
            refresh,
        }
    }

    /// The sources `/-/ready` waits for.
    pub fn readiness_keys(&self) -> &[SourceKey] {
        &self.readiness
    }

    /// Asks every collector of `database` to run again now.
    pub fn refresh_database(&self, database: &str) {
        for (key, notify) in &self.refresh {
            if key.database.as_deref() == Some(database) && key.collector != "integrity" {
                notify.notify_one();
            }
        }
    }

    /// Stops every job and waits for the running collections to end.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.tracker.wait().await;
    }
}

fn watch_dir(dir: &Path, notify: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            if !matches!(event.kind, EventKind::Access(_)) {
                notify.notify_one();
            }
        }
    })
    .ok()?;
    watcher.watch(dir, RecursiveMode::NonRecursive).ok()?;
    Some(watcher)
}

async fn run(
    job: Job,
    snapshot: Arc<Snapshot>,
    notify: Arc<Notify>,
    permits: Arc<Semaphore>,
    cancel: CancellationToken,
) {
    let key = job.key();
    let mut watcher = None;
    let mut last_ok = true;
    loop {
        if watcher.is_none() {
            if let Some(dir) = &job.watch {
                watcher = watch_dir(dir, notify.clone());
            }
        }
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            permit = permits.clone().acquire_owned() => permit,
        };
        let started = Instant::now();
        // The configuration bounds timeouts; a sum that still overflows means no deadline.
        let deadline = started
            .checked_add(job.timeout)
            .unwrap_or(started + Duration::from_secs(365 * 86_400));
        let collector = job.collector.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            collector.collect(deadline)
        })
        .await;
        let result = match outcome {
            Ok(Ok(mut set)) => {
                if let Some(db) = &job.database {
                    set.prefix_label("database", db);
                }
                Some(set)
            }
            Ok(Err(e)) => {
                if last_ok {
                    tracing::warn!(collector = key.collector, database = key.database.as_deref(), error = %e, "collection failed");
                } else {
                    tracing::debug!(collector = key.collector, database = key.database.as_deref(), error = %e, "collection failed again");
                }
                None
            }
            Err(e) => {
                tracing::error!(collector = key.collector, database = key.database.as_deref(), error = %e, "collector panicked");
                None
            }
        };
        if result.is_some() && !last_ok {
            tracing::info!(
                collector = key.collector,
                database = key.database.as_deref(),
                "collection recovered"
            );
        }
        last_ok = result.is_some();
        snapshot.record(key.clone(), result, started.elapsed(), SystemTime::now());
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(job.interval) => {}
            _ = notify.notified() => {
                // Let a burst of file events settle into one collection.
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
    }
}
