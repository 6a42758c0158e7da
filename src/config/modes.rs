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

/// How much of a database's figures `/metrics` shows (`detail`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    /// Every series, breakdowns by pattern type, category, agent and task type included.
    #[default]
    Full,
    /// Health, size, backup and responder series as in `full`; the breakdowns
    /// summed into one series per database (averages weighted by their counts),
    /// `caretaker_app_metric` (whose names cannot be added) and
    /// `caretaker_patterns_by_category` (whose one sum is the pattern count)
    /// left out, and a collector's health series shown only while it fails.
    /// For fleets: the demo database's ~380 series become ~200, most of them
    /// the responder's, which are kept whole.
    Summary,
}
