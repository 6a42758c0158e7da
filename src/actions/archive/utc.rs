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
        let (y, mo, d, h, mi, s) = self.civil();
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn rfc3339(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }

    /// Days since the epoch to a Gregorian date (Howard Hinnant's
    /// `civil_from_days`), plus the time of day.
    fn civil(self) -> (i64, i64, i64, i64, i64, i64) {
        let (days, secs) = (self.0.div_euclid(86_400), self.0.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day, secs / 3600, secs % 3600 / 60, secs % 60)
    }
}
