//! The `backup_retention` action: seed 001's 30 daily days and seed 000's
//! monthly copies kept a year, applied to the database's [`BackupSet`], and
//! to its offsite store when configured. The rule itself is
//! [`crate::backups::retention::plan`].

use super::{Action, ActionContext, ActionError, Outcome};
use crate::backups::offsite::Offsite;
use crate::backups::BackupSet;

/// The `backup_retention` action: deletes the backups the retention plan
/// names, each with its sidecar.
pub struct BackupRetention;

impl Action for BackupRetention {
    fn mutates(&self) -> bool {
        false
    }

    fn writes_files(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let cfg = ctx.backup()?;
        let set = BackupSet::new(&cfg.dir, &ctx.database.name);
        let pruned = set.apply_retention(cfg, ctx.now, ctx.deadline, ctx.dry_run)?;
        let verb = if ctx.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let mut summary = format!(
            "{verb} {} old backups of {} ({} bytes)",
            pruned.files.len(),
            ctx.database.name,
            pruned.bytes
        );
        let mut outcome = Outcome::new("");
        if let Some(offsite) = &cfg.offsite {
            let remote = Offsite::open(offsite, &ctx.database.name)
                .and_then(|o| o.apply_retention(ctx.now, &cfg.dir, ctx.dry_run));
            match remote {
                Ok(remote) => {
                    summary.push_str(&format!("; {verb} {} offsite", remote.backups.len()));
                    if !remote.incomplete.is_empty() {
                        summary.push_str(&format!(
                            " and {} objects of uploads cut short",
                            remote.incomplete.len()
                        ));
                    }
                    let incomplete_bytes: u64 = remote.incomplete.iter().map(|i| i.size).sum();
                    outcome = outcome
                        .figure("offsite_backups_removed", remote.backups.len() as f64)
                        .figure(
                            "offsite_bytes_freed",
                            (remote.bytes + incomplete_bytes) as f64,
                        )
                        .figure("offsite_incomplete_removed", remote.incomplete.len() as f64);
                }
                Err(e) => {
                    tracing::warn!(database = %ctx.database.name, error = %e, "remote retention failed");
                    summary.push_str(&format!("; offsite retention failed: {e}"));
                    outcome = outcome.figure("offsite_retention_failed", 1.0);
                }
            }
        }
        outcome.summary = summary;
        Ok(outcome
            .figure("files_removed", pruned.files.len() as f64)
            .figure("bytes_freed", pruned.bytes as f64))
    }
}
