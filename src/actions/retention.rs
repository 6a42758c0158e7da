//! The `backup_retention` action: seed 001's 30 daily days and seed 000's
//! monthly copies kept a year, applied to the database's [`BackupSet`]. The
//! rule itself is [`crate::backups::retention::plan`].

use super::{Action, ActionContext, ActionError, Outcome};
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
        let summary = format!(
            "{verb} {} old backups of {} ({} bytes)",
            pruned.files.len(),
            ctx.database.name,
            pruned.bytes
        );
        Ok(Outcome::new(summary)
            .figure("files_removed", pruned.files.len() as f64)
            .figure("bytes_freed", pruned.bytes as f64))
    }
}
