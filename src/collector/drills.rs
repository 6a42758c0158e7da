//! The last restore drills' figures for the backups collector, read from
//! the record the `restore_drill` action keeps in the backup folder (see
//! [`crate::backups::drill`]): whichever process ran the drill, and across
//! restarts.

use std::path::Path;

use crate::backups::drill::recorded;
use crate::metrics::MetricSet;

/// Adds `database`'s last drill of each source to `set`; nothing before
/// the first drill.
pub fn add_drill_figures(set: &mut MetricSet, dir: &Path, database: &str) {
    for (source, drill) in recorded(dir, database) {
        let labels = || vec![("source", source.as_str().to_string())];
        set.gauge(
            "caretaker_restore_drill_success",
            "1 if the last restore drill restored the newest backup and it matched its manifest",
            labels(),
            f64::from(u8::from(drill.success)),
        );
        set.gauge(
            "caretaker_restore_drill_duration_seconds",
            "How long the last restore drill took, download and checks included",
            labels(),
            drill.seconds,
        );
        set.gauge(
            "caretaker_restore_drill_timestamp_seconds",
            "When the last restore drill finished",
            labels(),
            drill.at,
        );
    }
}
