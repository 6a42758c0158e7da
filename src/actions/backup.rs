//! The `backup` action: writes a new backup into the database's
//! [`BackupSet`], then applies retention. How a backup is made, and why it is
//! built that way, is in [`crate::backups::pipeline`].

use std::time::{Instant, SystemTime};

use super::{Action, ActionContext, ActionError, Outcome};
use crate::backups::offsite::links::upload_pending_links;
use crate::backups::offsite::upload::{count_failure, upload_pending, Uploaded};
use crate::backups::offsite::{Offsite, OffsiteError};
use crate::backups::BackupSet;
use crate::config::OffsiteConfig;
use crate::store::private;

pub struct Backup;

impl Action for Backup {
    /// Only reads the application database.
    fn mutates(&self) -> bool {
        false
    }

    fn writes_files(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let db = ctx.database;
        let cfg = ctx.backup()?;
        let started = Instant::now();
        let deadline = ctx.deadline.min(started + cfg.timeout);
        // Under the database's lock (see `writes_files`): no other backup
        // of this database can take the name between here and the rename.
        let set = BackupSet::new(&cfg.dir, &db.name);
        let name = set.free_name(ctx.now, cfg.compression);
        let bytes_database = std::fs::metadata(&db.path)
            .map_err(|e| ActionError::Failed(format!("cannot read {}: {e}", db.path.display())))?
            .len();
        if ctx.dry_run {
            let summary = format!(
                "would back up {} ({bytes_database} bytes) to {}",
                db.name,
                cfg.dir.join(&name).display()
            );
            return Ok(Outcome::new(summary).figure("bytes_database", bytes_database as f64));
        }
        private::create_dir_all(&cfg.dir)?;
        let written = set.write(db, cfg, &name, deadline, &ctx.progress)?;
        let seconds = started.elapsed().as_secs_f64();
        let (files_removed, retention_note) =
            match set.apply_retention(cfg, ctx.now, deadline, false) {
                Ok(pruned) => (pruned.files.len(), String::new()),
                Err(e) => {
                    tracing::warn!(database = %db.name, error = %e, "backup retention failed");
                    (0, format!("; retention failed: {e}"))
                }
            };
        let offsite = cfg
            .offsite
            .as_ref()
            .map(|o| upload_offsite(o, &set, ctx.now, deadline));
        let offsite_note = match &offsite {
            None => String::new(),
            Some(Ok((up, removed))) => {
                format!(
                    "; uploaded {} offsite, removed {removed} remote",
                    up.backups
                )
            }
            Some(Err(_)) => "; offsite upload failed (retried at the next backup)".to_string(),
        };
        let ratio = written.bytes_copied as f64 / written.bytes_written.max(1) as f64;
        let summary = format!(
            "backed up {} to {} ({} bytes, ratio {ratio:.1}) in {seconds:.1} s; removed {files_removed} old backups{retention_note}{offsite_note}",
            db.name,
            written.path.display(),
            written.bytes_written,
        );
        let mut outcome = Outcome::new(summary);
        if let Some(result) = &offsite {
            let (up, removed) = result.as_ref().ok().cloned().unwrap_or_default();
            outcome = outcome
                .figure("offsite_backups_removed", removed as f64)
                .figure("offsite_backups_uploaded", up.backups as f64)
                .figure("offsite_bytes_uploaded", up.bytes as f64)
                .figure(
                    "offsite_upload_failed",
                    f64::from(u8::from(result.is_err())),
                );
        }
        Ok(outcome
            .figure("bytes_database", bytes_database as f64)
            .figure("bytes_copied", written.bytes_copied as f64)
            .figure("bytes_written", written.bytes_written as f64)
            .figure("compression_ratio", ratio)
            .figure("seconds", seconds)
            .figure("seconds_copy", written.phases.copy)
            .figure("seconds_check", written.phases.check)
            .figure("seconds_compress", written.phases.compress)
            .figure("files_removed", files_removed as f64))
    }
}

/// Uploads what the store lacks, then applies remote retention; returns
/// the upload and the remote backups removed. A failed upload never fails
/// the local backup: it is counted (`caretaker_offsite_upload_failures_total`),
/// logged, and retried by the next backup, which uploads every backup still
/// missing. A failed remote retention is logged and deletes nothing more.
fn upload_offsite(
    cfg: &OffsiteConfig,
    set: &BackupSet,
    now: SystemTime,
    deadline: Instant,
) -> Result<(Uploaded, usize), OffsiteError> {
    let store = Offsite::open(cfg, set.database());
    let result = store
        .as_ref()
        .map_err(|e| OffsiteError::Failed(e.to_string()))
        .and_then(|o| upload_pending(o, set, deadline));
    // The links of the chains whose full backup is now in the store.
    let result = result.and_then(|mut up| {
        let links = store
            .as_ref()
            .map_err(|e| OffsiteError::Failed(e.to_string()))
            .and_then(|o| upload_pending_links(o, set, usize::MAX, deadline))?;
        up.bytes += links.bytes;
        Ok(up)
    });
    let up = match result {
        Ok(up) => up,
        Err(e) => {
            let failures = count_failure(set.dir(), set.database()).unwrap_or(0);
            tracing::warn!(database = %set.database(), error = %e, failures, "offsite upload failed");
            return Err(e);
        }
    };
    let removed = match store.map(|o| o.apply_retention(now, set.dir(), false)) {
        Ok(Ok(pruned)) => pruned.backups.len(),
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(database = %set.database(), error = %e, "remote retention failed");
            0
        }
    };
    Ok((up, removed))
}
