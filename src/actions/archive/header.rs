//! An archive's first line: which database, table and columns, when, why,
//! and how a restore puts the rows back.

use serde::{Deserialize, Serialize};

use super::{Utc, FORMAT_VERSION, ROWID_COLUMN, ROWID_FORMAT_VERSION};

/// The first line of an archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveHeader {
    /// Always [`FORMAT_VERSION`].
    pub caretaker_archive: u32,
    /// The database's name in the configuration.
    pub database: String,
    pub table: String,
    pub columns: Vec<String>,
    /// RFC 3339, UTC, from the action's injected clock.
    pub created_at: String,
    /// Why the rows were removed (`prune`, `orphaned`, `retention`, `expired`)
    /// or changed (`tune`).
    pub reason: String,
    /// How a restore puts the rows back; absent (insert) in version 1.
    #[serde(default, skip_serializing_if = "RestoreMode::is_insert")]
    pub restore: RestoreMode,
    /// In a rowid archive, the rows whose primary key the run itself changed
    /// (embeddings re-pointed to the pattern that was kept). Any other row
    /// whose rowid now holds a different key was added after the run, taking
    /// the rowid of a row the run removed, and a restore refuses to
    /// overwrite it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rekeyed_rowids: Vec<i64>,
}

/// How [`restore_archive`] puts an archive's rows back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreMode {
    /// The rows were deleted: insert those whose primary key is missing.
    #[default]
    Insert,
    /// The rows were changed (or deleted): the first column is the rowid, and
    /// each rowid's row is set back to the archived values (inserted when it
    /// is gone).
    Rowid,
}

impl RestoreMode {
    pub(super) fn is_insert(&self) -> bool {
        *self == RestoreMode::Insert
    }
}

impl ArchiveHeader {
    pub fn new(database: &str, table: &str, columns: Vec<String>, at: Utc, reason: &str) -> Self {
        Self {
            caretaker_archive: FORMAT_VERSION,
            database: database.to_string(),
            table: table.to_string(),
            columns,
            created_at: at.rfc3339(),
            reason: reason.to_string(),
            restore: RestoreMode::Insert,
            rekeyed_rowids: Vec::new(),
        }
    }

    /// The header of an archive of changed rows: `columns` are the table's,
    /// and the archive's rows start with their rowid.
    pub fn of_changed_rows(
        database: &str,
        table: &str,
        columns: Vec<String>,
        at: Utc,
        reason: &str,
    ) -> Self {
        let mut all = vec![ROWID_COLUMN.to_string()];
        all.extend(columns);
        Self {
            caretaker_archive: ROWID_FORMAT_VERSION,
            restore: RestoreMode::Rowid,
            ..Self::new(database, table, all, at, reason)
        }
    }
}
