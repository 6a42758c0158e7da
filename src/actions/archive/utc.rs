//! Time as archives and the seeds' SQL write it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A UTC instant in whole seconds, in the text forms archives and SQLite use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Utc(i64);

impl Utc {
    pub fn from_system(t: SystemTime) -> Self {
        let clamp = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(clamp(d)),
            // Round down before the epoch too, as SQLite's datetime() does.
            Err(e) => Self(-clamp(e.duration()) - i64::from(e.duration().subsec_nanos() > 0)),
        }
    }

    pub fn from_unix_seconds(secs: i64) -> Self {
        Self(secs)
    }

    pub fn minus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)),
        )
    }

    /// `YYYY-MM-DD HH:MM:SS`, what `datetime('now', ...)` returns, so it
    /// compares with the seeds' timestamps exactly as the runbooks' SQL does.
    pub fn sqlite_text(self) -> String {
        self.format("%Y-%m-%d %H:%M:%S")
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn rfc3339(self) -> String {
        self.format("%Y-%m-%dT%H:%M:%SZ")
    }

    fn format(self, pattern: &str) -> String {
        chrono::DateTime::from_timestamp(self.0, 0)
            .map(|t| t.format(pattern).to_string())
            .unwrap_or_default()
    }
}
