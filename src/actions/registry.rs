//! Action kinds to implementations: the one place that builds every action.

use std::collections::BTreeMap;

use super::backup::Backup;
use super::cleanup::CleanupFiles;
use super::command::RunCommand;
use super::integrity::IntegrityCheck;
use super::kind::ActionKind;
use super::pragma::{PragmaAction, Statement};
use super::prune::PrunePatterns;
use super::purge::PurgeExpired;
use super::report::WriteReport;
use super::restore_drill::RestoreDrill;
use super::retention::BackupRetention;
use super::tune::TunePatterns;
use super::vacuum::Vacuum;
use super::verify_backups::VerifyBackups;
use super::Action;
use crate::config::Config;

/// The action of `kind`, with the alert labels a command may receive.
/// `None` for a command that is not configured.
pub fn build(
    kind: &ActionKind,
    config: &Config,
    labels: &BTreeMap<String, String>,
) -> Option<Box<dyn Action>> {
    let action: Box<dyn Action> = match kind {
        ActionKind::Backup => Box::new(Backup),
        ActionKind::VerifyBackups => Box::new(VerifyBackups),
        ActionKind::BackupRetention => Box::new(BackupRetention),
        ActionKind::PurgeExpired => Box::new(PurgeExpired),
        ActionKind::PrunePatterns => Box::new(PrunePatterns),
        ActionKind::TunePatterns => Box::new(TunePatterns),
        ActionKind::Vacuum => Box::new(Vacuum),
        ActionKind::Analyze => Box::new(PragmaAction(Statement::Analyze)),
        ActionKind::Optimize => Box::new(PragmaAction(Statement::Optimize)),
        ActionKind::WalCheckpoint => Box::new(PragmaAction(Statement::WalCheckpoint)),
        ActionKind::IntegrityCheck => Box::new(IntegrityCheck),
        ActionKind::CleanupFiles => Box::new(CleanupFiles),
        ActionKind::Report(schedule) => {
            let s = config.schedules.iter().find(|s| &s.name == schedule)?;
            Box::new(WriteReport {
                config: config.clone(),
                settings: s.report.clone()?,
            })
        }
        ActionKind::RestoreDrill => Box::new(RestoreDrill),
        ActionKind::Command(command) => {
            let spec = config.commands.iter().find(|c| &c.name == command)?;
            Box::new(RunCommand {
                spec: spec.clone(),
                labels: labels.clone(),
            })
        }
    };
    Some(action)
}
