//! The health series each collected source carries beside its figures
//! (`caretaker_collector_success`, `_duration_seconds`,
//! `_last_success_timestamp_seconds`), and the Unix-seconds conversion every
//! timestamp series uses.

use std::time::SystemTime;

use super::snapshot::{SourceKey, SourceStatus};
use super::{Labels, MetricSet};

/// The health series of one source: whether its last run succeeded, how
/// long it took, when it last succeeded. A `summary` database's sources
/// publish them only while they fail: at 1,000 databases the 15 health series
/// of each were a third of `/metrics`, and a failure (what
/// `CaretakerCollectorFailing` and the dashboards' failing counts look for)
/// still shows exactly as at `full`.
pub(super) fn health(key: &SourceKey, s: &SourceStatus) -> MetricSet {
    let mut set = MetricSet::new();
    let mut labels: Labels = vec![("collector", key.collector.to_string())];
    if let Some(db) = &key.database {
        labels.push(("database", db.clone()));
    }
    set.gauge(
        "caretaker_collector_success",
        "1 if the collector's last run succeeded, 0 if it failed",
        labels.clone(),
        if s.ok { 1.0 } else { 0.0 },
    );
    set.gauge(
        "caretaker_collector_duration_seconds",
        "How long the collector's last run took",
        labels.clone(),
        s.duration.as_secs_f64(),
    );
    if let Some(t) = s.last_success {
        set.gauge(
            "caretaker_collector_last_success_timestamp_seconds",
            "When the collector last succeeded, as a Unix timestamp",
            labels,
            unix_seconds(t),
        );
    }
    set
}

/// Seconds since the Unix epoch as a float (0 for times before it).
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::metrics::{MetricSet, Snapshot, SourceKey};

    fn encoded(snapshot: &Snapshot) -> String {
        let mut out = String::new();
        snapshot.encode_into(&mut out);
        out
    }

    #[test]
    fn a_summary_database_shows_collector_health_only_while_a_collector_fails() {
        let snapshot = Snapshot::new();
        snapshot.set_summary_databases(["quiet".to_string()]);
        let run = |db: &str, ok: bool| {
            let key = SourceKey::new("test", Some(db));
            let set = ok.then(MetricSet::new);
            snapshot.record(key, set, Duration::from_millis(3), SystemTime::now());
        };
        run("quiet", true);
        run("loud", true);
        let text = encoded(&snapshot);
        assert!(!text.contains("database=\"quiet\""), "{text}");
        assert!(
            text.contains("caretaker_collector_success{collector=\"test\",database=\"loud\"} 1")
        );
        run("quiet", false);
        let text = encoded(&snapshot);
        assert!(
            text.contains("caretaker_collector_success{collector=\"test\",database=\"quiet\"} 0")
        );
        assert!(text.contains("caretaker_collector_last_success_timestamp_seconds{collector=\"test\",database=\"quiet\"}"));
        run("quiet", true);
        assert!(!encoded(&snapshot).contains("database=\"quiet\""));
        // The same figures again change nothing shown: the generation stays
        // (scrapes share their body); a full database's pass changes it.
        let before = snapshot.generation();
        run("quiet", true);
        assert_eq!(snapshot.generation(), before);
        assert_eq!(
            snapshot
                .status(&SourceKey::new("test", Some("quiet")))
                .map(|s| s.runs),
            Some(4)
        );
        run("loud", true);
        assert_ne!(snapshot.generation(), before);
    }

    #[test]
    fn a_summary_source_whose_figures_change_is_shown_anew() {
        let snapshot = Snapshot::new();
        snapshot.set_summary_databases(["quiet".to_string()]);
        let run = |v: f64| {
            let mut set = MetricSet::new();
            set.gauge(
                "caretaker_test_size",
                "a size",
                vec![("database", "quiet".into())],
                v,
            );
            snapshot.record(
                SourceKey::new("test", Some("quiet")),
                Some(set),
                Duration::ZERO,
                SystemTime::now(),
            );
        };
        run(1.0);
        let before = snapshot.generation();
        run(1.0);
        assert_eq!(snapshot.generation(), before);
        run(2.0);
        assert_ne!(snapshot.generation(), before);
        assert!(encoded(&snapshot).contains("caretaker_test_size{database=\"quiet\"} 2\n"));
    }

    #[test]
    fn each_source_keeps_its_health_and_families_appear_once() {
        let snapshot = Snapshot::new();
        for db in ["one", "two"] {
            let mut set = MetricSet::new();
            set.gauge(
                "caretaker_test_size",
                "a size",
                vec![("database", db.into())],
                1.0,
            );
            let key = SourceKey::new("test", Some(db));
            snapshot.record(key, Some(set), Duration::ZERO, SystemTime::now());
        }
        snapshot.record(
            SourceKey::new("test", Some("two")),
            None,
            Duration::ZERO,
            SystemTime::now(),
        );
        let text = encoded(&snapshot);
        for name in ["caretaker_test_size", "caretaker_collector_success"] {
            let types = text.matches(&format!("# TYPE {name} ")).count();
            assert_eq!(types, 1, "{name} once in:\n{text}");
        }
        assert!(text.contains("caretaker_collector_success{collector=\"test\",database=\"one\"} 1"));
        assert!(text.contains("caretaker_collector_success{collector=\"test\",database=\"two\"} 0"));
        assert_eq!(
            text.matches("caretaker_test_size{").count(),
            1,
            "a failure drops its figures"
        );
    }
}
