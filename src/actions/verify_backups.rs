//! The `verify_backups` action: proves the newest backups can be restored.
//!
//! Each of the newest `verify_newest` backups of the database's
//! [`BackupSet`] is checked end to end (checksum, decompression,
//! `quick_check`; see [`crate::backups::verify`]), and so is its chain of
//! incremental snapshots, rebuilt to its last link. Nothing is deleted; a
//! failure names the files.

use std::time::Instant;

use super::{Action, ActionContext, ActionError, Outcome};
use crate::backups::chain::rebuild::verify_chain;
use crate::backups::chain::Chain;
use crate::backups::temporaries::file_name;
use crate::backups::BackupSet;
use crate::config::IntegrityMode;

pub struct VerifyBackups;

impl Action for VerifyBackups {
    fn mutates(&self) -> bool {
        false
    }

    fn writes_files(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let db = ctx.database;
        let cfg = ctx.backup()?;
        let set = BackupSet::new(&cfg.dir, &db.name);
        let backups = set.list(ctx.deadline)?;
        let newest: Vec<_> = backups.into_iter().take(cfg.verify_newest).collect();
        if ctx.dry_run {
            return Ok(Outcome::new(format!(
                "would verify the {} newest backups of {}",
                newest.len(),
                db.name
            ))
            .figure("checked", 0.0));
        }
        let mut failed = Vec::new();
        for (done, backup) in newest.iter().enumerate() {
            if Instant::now() >= ctx.deadline {
                return Err(ActionError::Deadline(format!(
                    "verified {done} of {} backups ({} failed)",
                    newest.len(),
                    failed.len()
                )));
            }
            if let Err(why) = set.verify(
                &backup.path,
                IntegrityMode::Quick,
                ctx.deadline,
                &ctx.progress,
            ) {
                tracing::error!(file = %backup.path.display(), %why, "backup failed verification");
                failed.push(format!("{} ({why})", file_name(&backup.path)));
                continue;
            }
            // Its chain of incremental snapshots, if one was started, to the last link.
            let chain = Chain::read(backup.clone()).map_err(ActionError::Io)?;
            if chain.started() && (!chain.links.is_empty() || chain.broken.is_some()) {
                if let Err(why) =
                    verify_chain(&chain, IntegrityMode::Quick, ctx.deadline, &ctx.progress)
                {
                    tracing::error!(chain = %chain.dir.display(), %why, "chain failed verification");
                    failed.push(format!("{} ({why})", file_name(&chain.dir)));
                }
            }
        }
        if !failed.is_empty() {
            return Err(ActionError::Failed(format!(
                "{} of {} backups of {} failed verification: {}",
                failed.len(),
                newest.len(),
                db.name,
                failed.join(", ")
            )));
        }
        Ok(Outcome::new(format!(
            "the {} newest backups of {} verified",
            newest.len(),
            db.name
        ))
        .figure("checked", newest.len() as f64)
        .figure("ok", newest.len() as f64)
        .figure("failed", 0.0))
    }
}
