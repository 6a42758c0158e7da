//! The `restore_drill` action: restores the newest backups (local, and
//! offsite when configured) into a scratch folder and compares them with
//! their manifests (see [`crate::backups::drill`]). It never opens the live
//! database. A drill that finds a problem fails the action, naming it.

use std::time::Instant;

use super::{Action, ActionContext, ActionError, Outcome};
use crate::backups::drill::{drill_local, drill_offsite, record, Drill, DrillSource};
use crate::backups::offsite::Offsite;
use crate::backups::BackupSet;

pub struct RestoreDrill;

impl Action for RestoreDrill {
    /// Only reads backups.
    fn mutates(&self) -> bool {
        false
    }

    /// Its scratch folder is in the backup folder, and retention must not
    /// delete the backup it is drilling.
    fn writes_files(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let db = ctx.database;
        let cfg = ctx.backup()?;
        let set = BackupSet::new(&cfg.dir, &db.name);
        let deadline = ctx.deadline.min(Instant::now() + cfg.timeout);
        if ctx.dry_run {
            let sources = if cfg.offsite.is_some() {
                "local and offsite backups"
            } else {
                "local backup"
            };
            return Ok(Outcome::new(format!(
                "would restore the newest {sources} of {} into a scratch folder of {} and compare them with their manifests",
                db.name,
                cfg.dir.display()
            )));
        }
        let mut drills = vec![drill_local(&set, deadline)];
        if let Some(offsite) = &cfg.offsite {
            drills.push(match Offsite::open(offsite, &db.name) {
                Ok(store) => drill_offsite(&store, &cfg.dir, deadline, &ctx.progress),
                Err(e) => Drill {
                    source: DrillSource::Offsite,
                    backup: None,
                    seconds: 0.0,
                    foreign_key_violations: None,
                    failure: Some(format!("cannot open the offsite store: {e}")),
                },
            });
        }
        if let Err(e) = record(&cfg.dir, &db.name, &drills, ctx.now) {
            tracing::warn!(database = %db.name, error = %e, "cannot record the restore drill");
        }
        let parts: Vec<String> = drills.iter().map(describe).collect();
        let summary = format!("restore drill of {}: {}", db.name, parts.join("; "));
        if drills.iter().any(|d| !d.ok()) {
            for d in drills.iter().filter(|d| !d.ok()) {
                tracing::error!(database = %db.name, source = d.source.as_str(), failure = ?d.failure, "restore drill failed");
            }
            return Err(ActionError::Failed(summary));
        }
        let mut outcome = Outcome::new(summary);
        for d in &drills {
            let name = |what: &str| format!("{}_{what}", d.source.as_str());
            outcome = outcome
                .figure(&name("ok"), 1.0)
                .figure(&name("seconds"), d.seconds)
                .figure(
                    &name("foreign_key_violations"),
                    d.foreign_key_violations.unwrap_or(0) as f64,
                );
        }
        Ok(outcome)
    }
}

/// `local: memory-....db.zst restored and matched its manifest in 0.4 s`.
fn describe(d: &Drill) -> String {
    let backup = d.backup.as_deref().unwrap_or("no backup");
    match &d.failure {
        None => format!(
            "{}: {backup} restored and matched its manifest in {:.1} s ({} foreign key violations, as in the database)",
            d.source.as_str(),
            d.seconds,
            d.foreign_key_violations.unwrap_or(0)
        ),
        Some(why) => format!("{} failed: {why}", d.source.as_str()),
    }
}
