//! Closed choices of the backup and integrity settings, shared by the file
//! format and the resolved configuration.

use serde::Deserialize;

/// How backups are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// `.zst`, multi-threaded: the default, several times faster than gzip.
    #[default]
    Zstd,
    /// `.gz`, for tools that only know gzip.
    Gzip,
}

/// Which SQLite check the integrity collector runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrityMode {
    /// `PRAGMA quick_check`: about ten times faster, skips index consistency.
    Quick,
    /// `PRAGMA integrity_check`.
    #[default]
    Full,
}
