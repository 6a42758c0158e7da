//! The backup folder's figures: how many verified backups, how old, how large.
//!
//! What a backup is and how the folder is listed and checked lives in
//! [`crate::backups`]; this collector lists the folder on its interval,
//! keeping the checksum cache across scans, and turns the listing into figures.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::drills::add_drill_figures;
use super::offsite::OffsiteFigures;
use super::{CollectError, Collector};
use crate::backups::listing::{list_own, BackupFile, ChecksumCache};
use crate::backups::names::belongs_to;
use crate::config::OffsiteConfig;
use crate::metrics::{unix_seconds, MetricSet};
use crate::store::space::space_of;

pub struct BackupsCollector {
    dir: PathBuf,
    max_age: Duration,
    cache: Mutex<ChecksumCache>,
    /// In a folder shared with other databases: this database's name and
    /// theirs (see `backups::names`).
    owner: Option<(String, Vec<String>)>,
    /// `[database.backup.offsite]`, listed on the same interval.
    offsite: Option<OffsiteFigures>,
    /// The database whose restore drills are recorded in the folder.
    drills: Option<String>,
}

impl BackupsCollector {
    pub fn new(dir: &Path, max_age: Duration) -> Self {
        Self {
            dir: dir.to_path_buf(),
            max_age,
            cache: Mutex::new(ChecksumCache::default()),
            owner: None,
            offsite: None,
            drills: None,
        }
    }

    /// Also lists `database`'s offsite store on each collection (and, with
    /// `incremental`, its newest chain's recovery point).
    pub fn offsite(
        mut self,
        cfg: Option<&OffsiteConfig>,
        database: &str,
        incremental: bool,
    ) -> Self {
        self.offsite = cfg.map(|c| OffsiteFigures::new(c, database, &self.dir, incremental));
        self
    }

    /// Also reports `database`'s last restore drills.
    pub fn drills(mut self, database: &str) -> Self {
        self.drills = Some(database.to_string());
        self
    }

    /// Counts only `database`'s files when `others` keep backups in the same
    /// folder; with no others, every file in the folder counts.
    pub fn shared(mut self, database: &str, others: Vec<String>) -> Self {
        self.owner = (!others.is_empty()).then(|| (database.to_string(), others));
        self
    }

    /// Lists the folder's backups, newest first, hashing only what changed.
    pub fn scan(&self, deadline: Instant) -> Result<(Vec<BackupFile>, u64), CollectError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let own = |name: &str| match &self.owner {
            Some((database, others)) => belongs_to(name, database, others),
            None => true,
        };
        Ok(list_own(&self.dir, deadline, &mut cache, own)?)
    }
}

impl Collector for BackupsCollector {
    fn name(&self) -> &'static str {
        "backups"
    }

    fn collect(&self, deadline: Instant) -> Result<MetricSet, CollectError> {
        let mut set = MetricSet::new();
        set.gauge(
            "caretaker_backup_max_age_seconds",
            "Configured age after which the newest backup is overdue",
            vec![],
            self.max_age.as_secs_f64(),
        );
        if let Some(fs) = space_of(&self.dir) {
            set.gauge(
                "caretaker_backup_filesystem_size_bytes",
                "Size of the filesystem holding the backup folder",
                vec![],
                fs.size as f64,
            );
            set.gauge(
                "caretaker_backup_filesystem_avail_bytes",
                "Space available to caretaker on the filesystem holding the backup folder",
                vec![],
                fs.avail as f64,
            );
        }
        if let Some(offsite) = &self.offsite {
            offsite.add_to(&mut set);
        }
        if let Some(database) = &self.drills {
            add_drill_figures(&mut set, &self.dir, database);
        }
        let (files, total) = match self.scan(deadline) {
            Ok(scan) => scan,
            Err(CollectError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                set.gauge(
                    "caretaker_backup_dir_accessible",
                    "1 if the backup folder could be listed",
                    vec![],
                    0.0,
                );
                set.gauge(
                    "caretaker_backup_files",
                    "Backups whose .sha256 sidecar matches",
                    vec![],
                    0.0,
                );
                return Ok(set);
            }
            Err(e) => return Err(e),
        };
        set.gauge(
            "caretaker_backup_dir_accessible",
            "1 if the backup folder could be listed",
            vec![],
            1.0,
        );
        let verified: Vec<&BackupFile> = files.iter().filter(|f| f.verified).collect();
        set.gauge(
            "caretaker_backup_files",
            "Backups whose .sha256 sidecar matches",
            vec![],
            verified.len() as f64,
        );
        set.gauge(
            "caretaker_backup_unverified_files",
            "Files in the backup folder without a matching .sha256 sidecar",
            vec![],
            (files.len() - verified.len()) as f64,
        );
        set.gauge(
            "caretaker_backup_dir_size_bytes",
            "Total size of the files in the backup folder",
            vec![],
            total as f64,
        );
        if let Some(newest) = verified.first() {
            set.gauge(
                "caretaker_backup_last_success_timestamp_seconds",
                "Modification time of the newest verified backup",
                vec![],
                unix_seconds(newest.modified),
            );
            set.gauge(
                "caretaker_backup_last_size_bytes",
                "Size of the newest verified backup",
                vec![],
                newest.size as f64,
            );
        }
        if let Some(oldest) = verified.last() {
            set.gauge(
                "caretaker_backup_oldest_timestamp_seconds",
                "Modification time of the oldest verified backup",
                vec![],
                unix_seconds(oldest.modified),
            );
        }
        if let Some(newest) = files.first() {
            set.gauge(
                "caretaker_backup_last_verified_ok",
                "1 if the newest file in the backup folder matches its checksum",
                vec![],
                if newest.verified { 1.0 } else { 0.0 },
            );
        }
        Ok(set)
    }
}
