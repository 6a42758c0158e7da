//! The `backup` action: writes a new backup into the database's
//! [`BackupSet`], then applies retention. How a backup is made, and why it is
//! built that way, is in [`crate::backups::pipeline`].

use std::time::Instant;

use super::{Action, ActionContext, ActionError, Outcome};
use crate::backups::BackupSet;
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
        let written = set.write(db, cfg, &name, deadline)?;
        let seconds = started.elapsed().as_secs_f64();
        let (files_removed, retention_note) =
            match set.apply_retention(cfg, ctx.now, deadline, false) {
                Ok(pruned) => (pruned.files.len(), String::new()),
                Err(e) => {
                    tracing::warn!(database = %db.name, error = %e, "backup retention failed");
                    (0, format!("; retention failed: {e}"))
                }
            };
        let ratio = written.bytes_copied as f64 / written.bytes_written.max(1) as f64;
        let summary = format!(
            "backed up {} to {} ({} bytes, ratio {ratio:.1}) in {seconds:.1} s; removed {files_removed} old backups{retention_note}",
            db.name,
            written.path.display(),
            written.bytes_written,
        );
        Ok(Outcome::new(summary)
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
