//! The report's offsite copies and restore drills in the period: the proof
//! that a backup exists off the host and restores, next to the count of
//! backups taken.
//!
//! Offsite copies come from two places that can disagree, so both are shown:
//! the backup jobs' figures (what was uploaded, and the uploads that failed)
//! and, when offsite is configured, the store's own listing (the copies
//! uploaded in the period that are still there, after remote retention).
//! Drills come from the `restore_drill` jobs: a succeeded job's figures say
//! which sources it drilled; the file the drills keep in the backup folder
//! ([`drill::recorded`]) gives each source's last result, also of a failed
//! job.

use std::collections::BTreeMap;

use crate::backups::drill::{self, DrillSource};
use crate::backups::offsite::Offsite;
use crate::config::{DatabaseConfig, OffsiteLocation};
use crate::metrics::unix_seconds;
use crate::responder::job::JobStatus;
use crate::responder::state::JobRecord;

/// Offsite copies of the database made in the period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OffsiteSummary {
    pub configured: bool,
    /// From the backup jobs: copies uploaded, their bytes, failed uploads.
    pub uploaded: u64,
    pub bytes_uploaded: u64,
    pub upload_failures: u64,
    /// From the store's listing: copies uploaded in the period still there
    /// (none when it could not be listed: see `note`).
    pub in_store: Option<u64>,
    pub in_store_bytes: u64,
    /// Why the listing is missing.
    pub note: Option<String>,
}

/// The restore drills of one source in the period.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillSummary {
    pub source: DrillSource,
    /// Drills of this source in `restore_drill` jobs that succeeded.
    pub passed: u64,
    /// The source's last drill, when it finished in the period: (Unix
    /// seconds, passed).
    pub last: Option<(f64, bool)>,
}

/// The restore drills in the period: jobs by outcome, and per source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DrillsSummary {
    pub succeeded: u64,
    pub failed: u64,
    pub sources: Vec<DrillSummary>,
}

fn figure(job: &JobRecord, name: &str) -> f64 {
    job.outcome
        .as_ref()
        .and_then(|o| o["figures"][name].as_f64())
        .unwrap_or(0.0)
}

/// Offsite copies of `db` in `[from, to)`, from `jobs` (its jobs created
/// in the period) and its store.
pub fn offsite(db: &DatabaseConfig, jobs: &[JobRecord], from: f64, to: f64) -> OffsiteSummary {
    let mut out = OffsiteSummary::default();
    for job in jobs.iter().filter(|j| j.action == "backup") {
        out.uploaded += figure(job, "offsite_backups_uploaded") as u64;
        out.bytes_uploaded += figure(job, "offsite_bytes_uploaded") as u64;
        out.upload_failures += figure(job, "offsite_upload_failed") as u64;
    }
    let Some(cfg) = db.backup.as_ref().and_then(|b| b.offsite.as_ref()) else {
        return out;
    };
    out.configured = true;
    // Opening a folder store creates the folder; a report creates nothing.
    if let OffsiteLocation::Folder(dir) = &cfg.location {
        if !dir.exists() {
            out.in_store = Some(0);
            return out;
        }
    }
    match Offsite::open(cfg, &db.name).and_then(|o| o.list()) {
        Ok(remote) => {
            let mut n = 0;
            for r in remote {
                let at = unix_seconds(r.uploaded);
                if at >= from && at < to {
                    n += 1;
                    out.in_store_bytes += r.size;
                }
            }
            out.in_store = Some(n);
        }
        Err(e) => out.note = Some(format!("the offsite store could not be listed: {e}")),
    }
    out
}

/// Restore drills of `db` in `[from, to)`, from `jobs` and the drills'
/// record in the backup folder.
pub fn drills(db: &DatabaseConfig, jobs: &[JobRecord], from: f64, to: f64) -> DrillsSummary {
    let mut out = DrillsSummary::default();
    let mut passed: BTreeMap<DrillSource, u64> = BTreeMap::new();
    for job in jobs
        .iter()
        .filter(|j| j.action == "restore_drill" && !j.dry_run)
    {
        match job.status {
            JobStatus::Succeeded => {
                out.succeeded += 1;
                for source in [DrillSource::Local, DrillSource::Offsite] {
                    if figure(job, &format!("{}_ok", source.as_str())) > 0.0 {
                        *passed.entry(source).or_default() += 1;
                    }
                }
            }
            JobStatus::Failed => out.failed += 1,
            _ => {}
        }
    }
    let recorded = db
        .backup
        .as_ref()
        .map(|b| drill::recorded(&b.dir, &db.name))
        .unwrap_or_default();
    for source in [DrillSource::Local, DrillSource::Offsite] {
        let last = recorded
            .get(&source)
            .filter(|r| r.at >= from && r.at < to)
            .map(|r| (r.at, r.success));
        let passed = passed.get(&source).copied().unwrap_or(0);
        if passed > 0 || last.is_some() {
            out.sources.push(DrillSummary {
                source,
                passed,
                last,
            });
        }
    }
    out
}
