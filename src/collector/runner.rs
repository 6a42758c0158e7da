//! Which collections a configuration asks for, and the running set of them.
//!
//! Each (collector, database) pair is one [`Job`]: a collector, its
//! interval, its deadline, and the folder whose changes call for an early
//! run. [`jobs_for`] lists them; [`Collection`] runs them (on the threads
//! and schedule of [`super::pool`]) until a configuration reload cancels the
//! whole collection and starts a new one. An early refresh (an action
//! finished, the backup folder changed) runs a database's jobs again.
//!
//! The work is CPU-bound: more collections at once than cores finish no
//! sooner, and at 1,000 databases one blocking thread per job (Tokio's
//! `spawn_blocking`) started about 460 threads, each with its stack, SQLite
//! page cache and allocator arena touched, resident after they went idle.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::activity::ActivityCollector;
use super::backups::BackupsCollector;
use super::database::DatabaseCollector;
use super::host::HostCollector;
use super::integrity::IntegrityCollector;
use super::patterns::PatternsCollector;
pub use super::pool::{Carry, Lane};
use super::process::ProcessCollector;
use super::query::QueryCollector;
use super::{pool, Collector};
use crate::backups::names;
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
    /// The workers that run it.
    pub lane: Lane,
    /// What its collector was built from (the configuration, as text): a
    /// reload's job with the same key and fingerprint takes over the running
    /// one's collector and schedule (see [`Carry`]). `None`: built anew at
    /// every reload (query probes work out their plans once per collector).
    pub fingerprint: Option<String>,
}

impl Job {
    pub fn key(&self) -> SourceKey {
        SourceKey::new(self.collector.name(), self.database.as_deref())
    }
}

/// The jobs a configuration asks for.
pub fn jobs_for(config: &Config) -> Vec<Job> {
    let c = &config.collect;
    let mut jobs = Vec::new();
    let mut host_paths = config.host_filesystems.clone();
    let shared = names::shared_folders(config);
    for db in &config.databases {
        let built_from = format!("{db:?}|{c:?}");
        let job = |collector: Arc<dyn Collector>, interval, timeout, gates| Job {
            collector,
            database: Some(db.name.clone()),
            interval,
            timeout,
            watch: None,
            gates_readiness: gates,
            // A database's figures that readiness does not wait for are its
            // integrity check and query probes, the ones that may run long.
            lane: if gates { Lane::Fresh } else { Lane::Long },
            fingerprint: Some(built_from.clone()),
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
            let mut j = job(Arc::new(probes), tick, timeout, false);
            j.fingerprint = None;
            jobs.push(j);
        }
        if let Some(parent) = db.path.parent() {
            host_paths.push(parent.to_path_buf());
        }
        if let Some(backup) = &db.backup {
            let sharing = names::sharing(&shared, &db.name, &backup.dir);
            let fingerprint = format!("{built_from}|{sharing:?}");
            let mut j = job(
                Arc::new(
                    BackupsCollector::new(&backup.dir, backup.max_age)
                        .shared(&db.name, sharing)
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
            j.fingerprint = Some(fingerprint);
            jobs.push(j);
            host_paths.push(backup.dir.clone());
        }
    }
    let host_from = format!("{host_paths:?}|{c:?}");
    let host = |collector: Arc<dyn Collector>, gates| Job {
        collector,
        database: None,
        interval: c.host_interval,
        timeout: c.timeout,
        watch: None,
        gates_readiness: gates,
        lane: Lane::Fresh,
        fingerprint: Some(host_from.clone()),
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
    started: pool::Started,
}

impl Collection {
    /// Starts every job, taking over what `carry` (the collection this one
    /// replaces) holds of each; they stop when `parent` or
    /// [`Collection::stop`] cancels them.
    pub fn start(
        jobs: Vec<Job>,
        carry: Carry,
        snapshot: Arc<Snapshot>,
        parent: &CancellationToken,
    ) -> Self {
        let cancel = parent.child_token();
        let tracker = TaskTracker::new();
        let readiness = jobs
            .iter()
            .filter(|j| j.gates_readiness)
            .map(Job::key)
            .collect();
        let started = pool::start(jobs, carry, snapshot, &cancel, &tracker);
        tracker.close();
        Self {
            cancel,
            tracker,
            readiness,
            started,
        }
    }

    /// The sources `/-/ready` waits for.
    pub fn readiness_keys(&self) -> &[SourceKey] {
        &self.readiness
    }

    /// Asks every collector of `database` to run again now.
    pub fn refresh_database(&self, database: &str) {
        for (i, key) in self.started.jobs().iter().map(Job::key).enumerate() {
            if key.database.as_deref() == Some(database) && key.collector != "integrity" {
                let _ = self.started.early.send(i);
            }
        }
    }

    /// Stops every job, waits for the running collections to end, and
    /// returns what the next collection may take over.
    pub async fn stop(self) -> Carry {
        self.cancel.cancel();
        self.tracker.wait().await;
        self.started.carry()
    }
}
