//! The long-running process: configuration, collectors, reload and HTTP.
//!
//! [`run`] takes its listener and a cancellation token from the caller, so the
//! binary and the tests start caretaker the same way. The [`Runtime`] owns the
//! current configuration and its running collectors; a reload (SIGHUP or a
//! change of the file) validates the new file first and keeps the old
//! configuration running when the new one is invalid. `incremental` is the
//! loop that takes each database's incremental snapshots.

mod discovery;
mod handle;
pub mod heartbeat;
mod incremental;
mod reload;

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actions::archive;
use crate::backups::temporaries::remove_stale_temporaries;
use crate::collector::runner::{jobs_for, Carry, Collection};
use crate::config::{Config, Overrides};
use crate::metrics::{unix_seconds, MetricSet, Snapshot, SourceKey};
use crate::responder::executor::Executor;
use crate::responder::metrics::ResponderMetrics;
use crate::responder::queue::{start_workers, JobQueue};
use crate::responder::state::StateStore;
use crate::responder::Responder;
use crate::responder::{history, notifier, published, scheduler};
use crate::web::auth::Credentials;
use crate::web::security::WebSecurity;
use crate::web::{router, AppState};
use handle::announce_credentials;
use reload::{load_web_security, reload_loop};

/// How long shutdown waits for running actions.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The current configuration and everything running on its behalf.
pub struct Runtime {
    snapshot: Arc<Snapshot>,
    responder: Responder,
    /// Client for outcome notifications and the heartbeat.
    http: reqwest::Client,
    workers: std::sync::Mutex<Option<TaskTracker>>,
    config: RwLock<Arc<Config>>,
    readiness: RwLock<Vec<SourceKey>>,
    collection: tokio::sync::Mutex<Option<Collection>>,
    /// The bearer tokens in force; replaced whole by a reload that can read them.
    credentials: RwLock<Arc<Credentials>>,
    /// The web config file in force (TLS, users); replaced whole by a reload
    /// that can use the new one. Read at each connection and request.
    web_security: RwLock<Arc<WebSecurity>>,
    /// Flags that replace parts of the file at every load.
    overrides: Overrides,
    /// Refused discovered paths so far, by glob (a counter across reloads).
    discovery_errors: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    cancel: CancellationToken,
}

impl Runtime {
    /// Starts collecting and responding for `config`; everything stops when
    /// `cancel` fires. Fails when caretaker's state database cannot be opened.
    pub async fn start(
        config: Config,
        overrides: Overrides,
        cancel: CancellationToken,
        metrics: Arc<ResponderMetrics>,
    ) -> anyhow::Result<Arc<Self>> {
        // A web config file that cannot be used stops caretaker here, before
        // it listens: serving plain HTTP instead of the TLS asked for is no fallback.
        let web_security = load_web_security(&config).await?;
        tracing::info!(web = %web_security.describe(), "web config");
        let state_path = config.responder.state_path.clone();
        metrics.initialize(&config);
        let (restore, restored) = (metrics.clone(), config.clone());
        let (store, interrupted) = tokio::task::spawn_blocking(move || {
            let opened = StateStore::open(&state_path, unix_seconds(SystemTime::now()))?;
            restore.restore_breakers(&restored, &opened.0)?;
            Ok::<_, rusqlite::Error>(opened)
        })
        .await?
        .with_context(|| {
            format!(
                "opening the state database {}",
                config.responder.state_path.display()
            )
        })?;
        if interrupted > 0 {
            tracing::warn!(
                jobs = interrupted,
                "jobs were running when caretaker last stopped; marked interrupted"
            );
        }
        // A backup interrupted by a crash leaves hidden temporary files: never a backup, but space.
        for backup in config.databases.iter().filter_map(|d| d.backup.as_ref()) {
            let dir = backup.dir.clone();
            match tokio::task::spawn_blocking(move || remove_stale_temporaries(&dir)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => {
                    tracing::warn!(files = n, dir = %backup.dir.display(), "removed temporary files of an interrupted backup")
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, dir = %backup.dir.display(), "cannot clean the backup folder")
                }
                Err(e) => tracing::warn!(error = %e, "cleanup task failed"),
            }
        }
        // So does an archive interrupted before its rename; its rows are still in the database.
        for db in &config.databases {
            let dir = db.archive_dir.clone();
            if let Ok(Ok(n)) =
                tokio::task::spawn_blocking(move || archive::remove_stale_temporaries(&dir)).await
            {
                if !n.is_empty() {
                    tracing::warn!(files = n.len(), dir = %db.archive_dir.display(), "removed temporary files of an interrupted archive");
                }
            }
        }
        metrics.initialize(&config);
        let executor =
            Arc::new(Executor::new(Arc::new(store), metrics.clone()).with_stop(cancel.clone()));
        let queue = Arc::new(JobQueue::new(config.responder.queue_size, metrics));
        let responder = Responder::new(executor, queue);
        let (credentials, problems) = Credentials::load(&config.web);
        for problem in &problems {
            tracing::error!(error = %problem, "no usable token: the endpoints it opens answer 403");
        }
        announce_credentials(&config, &credentials);
        let snapshot = Snapshot::new();
        let mut build = MetricSet::new();
        build.gauge(
            "caretaker_build_info",
            "Always 1; the labels say which caretaker this is",
            vec![("version", env!("CARGO_PKG_VERSION").to_string())],
            1.0,
        );
        snapshot.set_fixed("build", build);
        let runtime = Arc::new(Self {
            snapshot,
            responder,
            http: reqwest::Client::new(),
            workers: std::sync::Mutex::new(None),
            config: RwLock::new(Arc::new(config.clone())),
            readiness: RwLock::new(Vec::new()),
            collection: tokio::sync::Mutex::new(None),
            credentials: RwLock::new(Arc::new(credentials)),
            web_security: RwLock::new(Arc::new(web_security)),
            overrides,
            discovery_errors: std::sync::Mutex::new(Default::default()),
            cancel,
        });
        let workers = config.responder.max_concurrent;
        runtime.apply(config).await;
        runtime.record_reload(true);
        let rt = runtime.clone();
        let tracker = start_workers(
            workers,
            runtime.responder.queue.clone(),
            runtime.cancel.clone(),
            move |id| {
                let rt = rt.clone();
                async move { rt.run_job(id).await }
            },
        );
        let rt = runtime.clone();
        let (cfg, submit) = (runtime.clone(), runtime.clone());
        tracker.reopen();
        tracker.spawn(scheduler::run(
            move || cfg.config(),
            move |jobs| {
                let rt = submit.clone();
                async move { rt.responder.submit(jobs).await }
            },
            rt.cancel.clone(),
        ));
        let (cfg, store) = (runtime.clone(), runtime.responder.executor.state.clone());
        tracker.spawn(history::run(
            store,
            move || cfg.config(),
            runtime.cancel.clone(),
        ));
        tracker.spawn(incremental::run(runtime.clone(), runtime.cancel.clone()));
        let cfg = runtime.clone();
        tracker.spawn(published::follow(
            runtime.responder.executor.state.clone(),
            runtime.snapshot.clone(),
            move || cfg.config().collect.database_interval,
            runtime.cancel.clone(),
        ));
        tracker.spawn(heartbeat::run(runtime.clone()));
        tracker.close();
        *runtime.workers.lock().unwrap_or_else(|e| e.into_inner()) = Some(tracker);
        let room = runtime.config().responder.queue_size;
        runtime.responder.requeue(room).await;
        Ok(runtime)
    }

    pub fn responder(&self) -> &Responder {
        &self.responder
    }

    /// Runs one job, then lets the exporter show its effect at once.
    async fn run_job(&self, id: i64) {
        let config = self.config();
        let Some(finished) = self.responder.executor.run(&config, id).await else {
            return;
        };
        let job = &finished.job;
        if !job.status.ran() {
            return;
        }
        if let Some(url) = &config.responder.notify_url {
            notifier::send(self.http.clone(), url.clone(), notifier::message(job));
        }
        published::publish_outcome(&self.snapshot, job, finished.outcome.as_ref());
        self.refresh_database(&job.database).await;
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    pub fn web_security(&self) -> Arc<WebSecurity> {
        self.web_security
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn credentials(&self) -> Arc<Credentials> {
        self.credentials
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Ready once every database (and the host) has been collected once.
    pub fn ready(&self) -> bool {
        let keys = self.readiness.read().unwrap_or_else(|e| e.into_inner());
        self.snapshot.collected_once(&keys)
    }

    /// Asks the collectors of `database` to run now (after an action changed it).
    pub async fn refresh_database(&self, database: &str) {
        if let Some(collection) = self.collection.lock().await.as_ref() {
            collection.refresh_database(database);
        }
    }

    async fn apply(&self, config: Config) {
        let mut slot = self.collection.lock().await;
        let carry = match slot.take() {
            Some(old) => old.stop().await,
            None => Carry::default(),
        };
        let names: Vec<String> = config.databases.iter().map(|d| d.name.clone()).collect();
        self.snapshot.retain_databases(&names);
        self.snapshot.set_summary_databases(
            config
                .databases
                .iter()
                .filter(|d| d.detail == crate::config::Detail::Summary)
                .map(|d| d.name.clone()),
        );
        let mut errors = self
            .discovery_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let discovered = discovery::publish(&config, &mut errors);
        drop(errors);
        self.snapshot.set_fixed("discovery", discovered);
        let jobs = jobs_for(&config);
        // A database whose last probe was removed has no query job any more:
        // its old figures would otherwise stay in the snapshot for good.
        let probed: Vec<Option<String>> = jobs
            .iter()
            .filter(|j| j.collector.name() == crate::collector::query::NAME)
            .map(|j| j.database.clone())
            .collect();
        self.snapshot.retain_sources(|key| {
            key.collector != crate::collector::query::NAME || probed.contains(&key.database)
        });
        let collection = Collection::start(jobs, carry, self.snapshot.clone(), &self.cancel);
        *self.readiness.write().unwrap_or_else(|e| e.into_inner()) =
            collection.readiness_keys().to_vec();
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        *slot = Some(collection);
    }

    async fn stop(&self) {
        if let Some(collection) = self.collection.lock().await.take() {
            let _ = collection.stop().await;
        }
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(workers) = workers {
            // Running actions finish (or their transactions roll back) within the deadline.
            if tokio::time::timeout(SHUTDOWN_GRACE, workers.wait())
                .await
                .is_err()
            {
                tracing::warn!("actions still running at shutdown; their transactions roll back");
            }
        }
    }
}

/// Runs caretaker until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with(config, Overrides::default(), listener, shutdown).await
}

/// [`run`], with command-line `overrides` applied to every load of the file.
pub async fn run_with(
    mut config: Config,
    overrides: Overrides,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    overrides.apply(&mut config);
    let mut registry = Registry::default();
    let metrics = Arc::new(ResponderMetrics::register(&mut registry));
    let address = listener
        .local_addr()
        .context("reading the listen address")?;
    let runtime = Runtime::start(config, overrides, shutdown.clone(), metrics.clone()).await?;
    runtime.responder.set_listen_port(address.port());
    let state = Arc::new(AppState {
        registry,
        live: metrics,
        runtime: runtime.clone(),
    });
    let reload = tokio::spawn(reload_loop(runtime.clone(), shutdown.clone()));
    let rescan = tokio::spawn(discovery::discovery_loop(runtime.clone(), shutdown.clone()));
    tracing::info!(%address, "listening");
    let limits = crate::web::serve::Limits::from(&runtime.config().web);
    let current = runtime.clone();
    let tls = move || current.web_security().tls();
    crate::web::serve::serve(listener, router(state), limits, tls, shutdown.clone()).await;
    shutdown.cancel();
    let _ = reload.await;
    let _ = rescan.await;
    runtime.stop().await;
    Ok(())
}
