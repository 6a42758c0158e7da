//! Action names to implementations: the one place that knows every action.

use std::collections::BTreeMap;

use super::backup::Backup;
use super::cleanup::CleanupFiles;
use super::command::RunCommand;
use super::integrity::IntegrityCheck;
use super::pragma::{PragmaAction, Statement};
use super::prune::PrunePatterns;
use super::purge::PurgeExpired;
use super::retention::BackupRetention;
use super::vacuum::Vacuum;
use super::verify_backups::VerifyBackups;
use super::Action;
use crate::config::Config;

/// The action called `name`, with the alert labels a command may receive.
/// `None` for names that are unknown (or not built into this version).
pub fn build(
    name: &str,
    config: &Config,
    labels: &BTreeMap<String, String>,
) -> Option<Box<dyn Action>> {
    if let Some(command) = name.strip_prefix("command:") {
        let spec = config.commands.iter().find(|c| c.name == command)?;
        return Some(Box::new(RunCommand {
            spec: spec.clone(),
            labels: labels.clone(),
        }));
    }
    let action: Box<dyn Action> = match name {
        "backup" => Box::new(Backup),
        "verify_backups" => Box::new(VerifyBackups),
        "backup_retention" => Box::new(BackupRetention),
        "purge_expired" => Box::new(PurgeExpired),
        "prune_patterns" => Box::new(PrunePatterns),
        "vacuum" => Box::new(Vacuum),
        "analyze" => Box::new(PragmaAction(Statement::Analyze)),
        "optimize" => Box::new(PragmaAction(Statement::Optimize)),
        "wal_checkpoint" => Box::new(PragmaAction(Statement::WalCheckpoint)),
        "integrity_check" => Box::new(IntegrityCheck),
        "cleanup_files" => Box::new(CleanupFiles),
        _ => return None,
    };
    Some(action)
}
