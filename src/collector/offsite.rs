//! The offsite store's figures for the backups collector: a listing of the
//! store on the collector's interval, in the background like every other
//! collection, never in the scrape. A store that cannot be listed is
//! `caretaker_offsite_reachable 0`, not a failed collector: the local
//! figures still count.

use std::path::PathBuf;

use crate::backups::offsite::upload::upload_failures;
use crate::backups::offsite::{Offsite, RemoteBackup};
use crate::config::OffsiteConfig;
use crate::metrics::{unix_seconds, MetricSet};

/// One database's offsite store, as the backups collector lists it.
pub struct OffsiteFigures {
    cfg: OffsiteConfig,
    database: String,
    /// The backup folder, which holds the count of failed uploads.
    dir: PathBuf,
    /// Incremental snapshots are on: the store's chains have a recovery point.
    incremental: bool,
}

impl OffsiteFigures {
    pub fn new(
        cfg: &OffsiteConfig,
        database: &str,
        dir: &std::path::Path,
        incremental: bool,
    ) -> Self {
        Self {
            cfg: cfg.clone(),
            database: database.to_string(),
            dir: dir.to_path_buf(),
            incremental,
        }
    }

    /// Lists the store and adds its figures to `set`.
    pub fn add_to(&self, set: &mut MetricSet) {
        set.counter(
            "caretaker_offsite_upload_failures",
            "Uploads of backups to the offsite store that failed (retried at the next backup)",
            vec![],
            upload_failures(&self.dir, &self.database) as f64,
        );
        let store = Offsite::open(&self.cfg, &self.database);
        let listing = store
            .as_ref()
            .map_err(|e| e.to_string())
            .and_then(|o| o.list().map_err(|e| e.to_string()));
        let remote = match listing {
            Ok(remote) => remote,
            Err(e) => {
                tracing::warn!(database = %self.database, error = %e, "offsite store cannot be listed");
                set.gauge(
                    "caretaker_offsite_reachable",
                    "1 if the offsite store could be listed at the last try",
                    vec![],
                    0.0,
                );
                return;
            }
        };
        set.gauge(
            "caretaker_offsite_reachable",
            "1 if the offsite store could be listed at the last try",
            vec![],
            1.0,
        );
        set.gauge(
            "caretaker_offsite_backup_files",
            "Complete backups (data, sidecar and manifest) in the offsite store",
            vec![],
            remote.len() as f64,
        );
        if let Some(newest) = remote.first() {
            set.gauge(
                "caretaker_offsite_backup_last_success_timestamp_seconds",
                "When the newest offsite backup was uploaded",
                vec![],
                unix_seconds(newest.uploaded),
            );
            set.gauge(
                "caretaker_offsite_backup_last_size_bytes",
                "Size of the newest offsite backup as stored (encrypted)",
                vec![],
                newest.size as f64,
            );
            if let Ok(store) = &store {
                self.add_recovery_point(set, store, newest);
            }
        }
    }
}

impl OffsiteFigures {
    /// The newest moment the store's newest chain restores: its last link
    /// (one listing of the chain and one manifest read), else its base.
    /// Shown while incremental snapshots are on, or while the store holds
    /// links (a host restoring from it needs no snapshots of its own).
    fn add_recovery_point(&self, set: &mut MetricSet, store: &Offsite, newest: &RemoteBackup) {
        let last_link = store.remote_link_count(&newest.name).and_then(|n| {
            (n > 0)
                .then(|| store.remote_link(&newest.name, n))
                .transpose()
        });
        let point = match last_link {
            Ok(Some(link)) => link.taken().unwrap_or(newest.taken),
            Ok(None) if self.incremental => newest.taken,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(database = %self.database, error = %e, "offsite chain cannot be read");
                return;
            }
        };
        set.gauge(
            "caretaker_backup_recovery_point_timestamp_seconds",
            "The newest moment restore --at can rebuild (a full backup and its deltas)",
            vec![("source", "offsite".to_string())],
            unix_seconds(point),
        );
    }
}
