//! Every action's name, once. The registry matches on [`ActionKind`]
//! exhaustively, so an action that is added here does not compile until it
//! is registered, and configuration, the API and the CLI list the same names.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The prefix of a `[[command]]`'s action name.
pub const COMMAND_PREFIX: &str = "command:";

/// The prefix of a `[[schedule]]`'s report action (`report:<schedule>`).
pub const REPORT_PREFIX: &str = "report:";

/// One kind of maintenance, as named in configuration, the state database,
/// metrics and the audit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    Backup,
    VerifyBackups,
    BackupRetention,
    PurgeExpired,
    PrunePatterns,
    TunePatterns,
    Vacuum,
    Analyze,
    Optimize,
    WalCheckpoint,
    IntegrityCheck,
    CleanupFiles,
    RestoreDrill,
    /// `command:<name>`: the `[[command]]` called `name`.
    Command(String),
    /// `report:<name>`: the report the `[[schedule]]` called `name` writes.
    Report(String),
}

impl ActionKind {
    /// The built-in actions (every kind but [`ActionKind::Command`]).
    pub const ALL: [ActionKind; 13] = [
        ActionKind::Backup,
        ActionKind::VerifyBackups,
        ActionKind::BackupRetention,
        ActionKind::PurgeExpired,
        ActionKind::PrunePatterns,
        ActionKind::TunePatterns,
        ActionKind::Vacuum,
        ActionKind::Analyze,
        ActionKind::Optimize,
        ActionKind::WalCheckpoint,
        ActionKind::IntegrityCheck,
        ActionKind::CleanupFiles,
        ActionKind::RestoreDrill,
    ];

    /// A built-in action's name; `None` for a command.
    pub fn builtin_name(&self) -> Option<&'static str> {
        Some(match self {
            ActionKind::Backup => "backup",
            ActionKind::VerifyBackups => "verify_backups",
            ActionKind::BackupRetention => "backup_retention",
            ActionKind::PurgeExpired => "purge_expired",
            ActionKind::PrunePatterns => "prune_patterns",
            ActionKind::TunePatterns => "tune_patterns",
            ActionKind::Vacuum => "vacuum",
            ActionKind::Analyze => "analyze",
            ActionKind::Optimize => "optimize",
            ActionKind::WalCheckpoint => "wal_checkpoint",
            ActionKind::IntegrityCheck => "integrity_check",
            ActionKind::CleanupFiles => "cleanup_files",
            ActionKind::RestoreDrill => "restore_drill",
            ActionKind::Command(_) | ActionKind::Report(_) => return None,
        })
    }

    /// The name: `backup`, ..., or `command:<name>`.
    pub fn name(&self) -> Cow<'static, str> {
        match (self.builtin_name(), self) {
            (Some(name), _) => Cow::Borrowed(name),
            (None, ActionKind::Command(name)) => Cow::Owned(format!("{COMMAND_PREFIX}{name}")),
            (None, ActionKind::Report(name)) => Cow::Owned(format!("{REPORT_PREFIX}{name}")),
            (None, _) => Cow::Borrowed(""),
        }
    }

    /// The built-in names, comma-separated, for error messages.
    pub fn known_list() -> String {
        let names: Vec<&str> = Self::ALL.iter().filter_map(Self::builtin_name).collect();
        names.join(", ")
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.name())
    }
}

/// A name that is neither a built-in action nor `command:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}")]
pub struct UnknownAction(pub String);

impl FromStr for ActionKind {
    type Err = UnknownAction;

    /// Any `command:<name>` parses; whether that command is configured is
    /// the configuration's question.
    fn from_str(s: &str) -> Result<Self, UnknownAction> {
        if let Some(name) = s.strip_prefix(COMMAND_PREFIX) {
            return Ok(ActionKind::Command(name.to_string()));
        }
        if let Some(name) = s.strip_prefix(REPORT_PREFIX) {
            return Ok(ActionKind::Report(name.to_string()));
        }
        Self::ALL
            .iter()
            .find(|k| k.builtin_name() == Some(s))
            .cloned()
            .ok_or_else(|| UnknownAction(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_kind() {
        for kind in ActionKind::ALL
            .iter()
            .cloned()
            .chain([ActionKind::Command("page".into())])
        {
            assert_eq!(kind.name().parse::<ActionKind>(), Ok(kind.clone()));
        }
        assert_eq!(ActionKind::Command("page".into()).name(), "command:page");
        assert!("command".parse::<ActionKind>().is_err());
        assert!("vacum".parse::<ActionKind>().is_err());
        assert_eq!(ActionKind::known_list().split(", ").count(), 13);
    }
}
