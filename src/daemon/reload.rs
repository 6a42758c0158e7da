//! What makes a running caretaker re-read its configuration (SIGHUP, and
//! changes of the file, watched through its folder since editors replace
//! files rather than write them in place), and the reload itself: the new
//! file, its token files and its web config file are all checked before
//! anything of the running configuration is replaced.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Runtime;
use crate::config::Config;
use crate::metrics::{unix_seconds, MetricSet};
use crate::web::auth::Credentials;
use crate::web::security::WebSecurity;

use super::handle::announce_credentials;

/// Reads the web config file of `config` (if any) on the blocking pool.
pub(super) async fn load_web_security(config: &Config) -> anyhow::Result<WebSecurity> {
    let path = config.web.config_file.clone();
    tokio::task::spawn_blocking(move || WebSecurity::load(path.as_deref()))
        .await
        .context("loading the web config file")?
        .map_err(anyhow::Error::from)
}

impl Runtime {
    pub(super) fn record_reload(&self, ok: bool) {
        let mut set = MetricSet::new();
        set.gauge(
            "caretaker_config_last_reload_successful",
            "1 if the last attempt to load the configuration succeeded",
            vec![],
            if ok { 1.0 } else { 0.0 },
        );
        if ok {
            self.snapshot.set_fixed("reload_time", {
                let mut t = MetricSet::new();
                t.gauge(
                    "caretaker_config_last_reload_success_timestamp_seconds",
                    "When the configuration was last loaded successfully",
                    vec![],
                    unix_seconds(SystemTime::now()),
                );
                t
            });
        }
        self.snapshot.set_fixed("reload", set);
    }

    /// Reloads the configuration file. An invalid file is refused and logged,
    /// and the running configuration stays. Returns whether it was accepted.
    pub async fn reload(&self) -> bool {
        let current = self.config();
        match Config::load(&current.source) {
            Ok(mut new) => {
                self.overrides.apply(&mut new);
                // So does a web config file that cannot be used: the TLS and
                // users in force keep serving.
                let web_security = match load_web_security(&new).await {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "configuration refused; the previous one and its web config keep running");
                        self.record_reload(false);
                        return false;
                    }
                };
                // A token file that cannot be used refuses the whole reload:
                // the running configuration and its tokens stay in force.
                let (credentials, problems) = Credentials::load(&new.web);
                if !problems.is_empty() {
                    for problem in &problems {
                        tracing::error!(error = %problem, "configuration refused; the previous one and its tokens keep running");
                    }
                    self.record_reload(false);
                    return false;
                }
                if credentials != *self.credentials() {
                    announce_credentials(&new, &credentials);
                }
                *self.credentials.write().unwrap_or_else(|e| e.into_inner()) =
                    Arc::new(credentials);
                let described = web_security.describe();
                if described != self.web_security().describe() {
                    tracing::info!(web = %described, "web config changed; new connections use it");
                }
                *self.web_security.write().unwrap_or_else(|e| e.into_inner()) =
                    Arc::new(web_security);
                if new.web.listen_address != current.web.listen_address {
                    tracing::warn!(
                        "web.listen_address changed; it takes effect at the next restart"
                    );
                }
                self.responder.executor.metrics.initialize(&new);
                if new.responder.state_path != current.responder.state_path
                    || new.responder.max_concurrent != current.responder.max_concurrent
                    || new.responder.queue_size != current.responder.queue_size
                {
                    tracing::warn!("responder state_file, max_concurrent and queue_size take effect at the next restart");
                }
                if new != *current {
                    tracing::info!(databases = new.databases.len(), "configuration reloaded");
                    self.apply(new).await;
                } else {
                    tracing::debug!("configuration unchanged");
                }
                self.record_reload(true);
                true
            }
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(error = %e, "configuration refused; the previous one keeps running");
                }
                self.record_reload(false);
                false
            }
        }
    }
}

/// How often the configuration's folder is polled when the kernel will not
/// give caretaker another inotify instance (`fs.inotify.max_user_instances`,
/// 128 by default, is per user and shared by every program of that user).
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Sends on `tx` whenever the file at `path` is written, created or replaced:
/// through inotify when it can, else by polling the folder, so a busy host
/// still reloads an edited file.
fn watch_file(path: &Path, tx: mpsc::Sender<()>) -> notify::Result<Box<dyn Watcher + Send>> {
    watch_file_with(path, tx, true)
}

/// [`watch_file`], with inotify tried only when `native` (tests take the
/// polling path this way).
fn watch_file_with(
    path: &Path,
    tx: mpsc::Sender<()>,
    native: bool,
) -> notify::Result<Box<dyn Watcher + Send>> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = path.file_name().map(|n| n.to_os_string());
    let handler = move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            let ours = event
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == name);
            if ours && !matches!(event.kind, notify::EventKind::Access(_)) {
                let _ = tx.try_send(());
            }
        }
    };
    let inotify = if native {
        notify::recommended_watcher(handler.clone()).and_then(|mut w| {
            w.watch(&dir, RecursiveMode::NonRecursive)?;
            Ok(Box::new(w) as Box<dyn Watcher + Send>)
        })
    } else {
        Err(notify::Error::generic("inotify not tried"))
    };
    match inotify {
        Ok(w) => Ok(w),
        Err(e) => {
            tracing::warn!(error = %e, interval = ?POLL_INTERVAL, "cannot watch the configuration's folder with inotify; polling it instead");
            // The file itself, by content: modification times are read in
            // whole seconds, and the folder may hold a large database.
            let config = notify::Config::default()
                .with_poll_interval(POLL_INTERVAL)
                .with_compare_contents(true);
            let mut w = notify::PollWatcher::new(handler, config)?;
            w.watch(path, RecursiveMode::NonRecursive)?;
            Ok(Box::new(w))
        }
    }
}

/// Reloads on SIGHUP and on changes of the configuration file until cancelled.
pub(super) async fn reload_loop(runtime: Arc<Runtime>, cancel: CancellationToken) {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let _watcher = match watch_file(&runtime.config().source, tx.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the configuration file; reload with SIGHUP");
            None
        }
    };
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
            None
        }
    };
    loop {
        let hangup = async {
            match hup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = hangup => tracing::info!("SIGHUP received; reloading the configuration"),
            Some(()) = rx.recv() => {
                // Editors write in several steps: let them finish.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while rx.try_recv().is_ok() {}
            }
        }
        runtime.reload().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_edit_is_seen_by_polling_when_inotify_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("caretaker.toml");
        std::fs::write(&path, "a").expect("write");
        let (tx, mut rx) = mpsc::channel(1);
        let _watcher = watch_file_with(&path, tx, false).expect("poll watcher");
        std::fs::write(&path, "b").expect("rewrite in the same second, same size");
        tokio::time::timeout(POLL_INTERVAL * 5, rx.recv())
            .await
            .expect("the edit is seen within a few polls")
            .expect("channel open");
    }
}
