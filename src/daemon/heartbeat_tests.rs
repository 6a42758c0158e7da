use std::path::Path;

use super::*;

const CONFIG: &str = r#"
[[database]]
name = "memory"
path = "memory.db"
[database.backup]
dir = "backups"
max_age = "1h"

[[database]]
name = "notes"
path = "notes.db"
"#;

fn config() -> Config {
    Config::parse(Path::new("/srv/agent/caretaker.toml"), CONFIG).expect("valid")
}

fn record(snapshot: &Snapshot, collector: &'static str, db: &str, figures: &[(&'static str, f64)]) {
    let mut set = MetricSet::new();
    for (name, value) in figures {
        set.gauge(name, "test", vec![], *value);
    }
    let key = SourceKey::new(collector, Some(db));
    snapshot.record(key, Some(set), Duration::ZERO, SystemTime::now());
}

/// Both databases up; memory's backups `hours_old`, verified.
fn healthy(now: SystemTime, hours_old: f64) -> Arc<Snapshot> {
    let snapshot = Snapshot::new();
    record(
        &snapshot,
        "database",
        "memory",
        &[("caretaker_database_up", 1.0)],
    );
    record(
        &snapshot,
        "database",
        "notes",
        &[("caretaker_database_up", 1.0)],
    );
    let taken = unix_seconds(now) - hours_old * 3600.0;
    record(
        &snapshot,
        "backups",
        "memory",
        &[
            ("caretaker_backup_files", 3.0),
            ("caretaker_backup_last_verified_ok", 1.0),
            ("caretaker_backup_last_success_timestamp_seconds", taken),
        ],
    );
    snapshot
}

fn reason(w: Option<Withheld>) -> Option<(Reason, Option<String>)> {
    w.map(|w| (w.reason, w.database))
}

#[test]
fn all_well_sends_and_not_ready_withholds() {
    let (cfg, now, none) = (config(), SystemTime::now(), BTreeSet::new());
    let snapshot = healthy(now, 0.5);
    assert_eq!(withheld(&cfg, &snapshot, true, &none, now), None);
    assert_eq!(
        reason(withheld(&cfg, &snapshot, false, &none, now)),
        Some((Reason::NotReady, None))
    );
}

#[test]
fn a_database_down_or_not_yet_seen_withholds() {
    let (cfg, now, none) = (config(), SystemTime::now(), BTreeSet::new());
    let snapshot = healthy(now, 0.5);
    record(
        &snapshot,
        "database",
        "notes",
        &[("caretaker_database_up", 0.0)],
    );
    let down = Some((Reason::DatabaseDown, Some("notes".to_string())));
    assert_eq!(reason(withheld(&cfg, &snapshot, true, &none, now)), down);
    // A failed database collection drops its figures: no `up` is not up.
    let key = SourceKey::new("database", Some("notes"));
    snapshot.record(key, None, Duration::ZERO, now);
    assert_eq!(reason(withheld(&cfg, &snapshot, true, &none, now)), down);
}

#[test]
fn a_failing_collector_withholds() {
    let (cfg, now, none) = (config(), SystemTime::now(), BTreeSet::new());
    let snapshot = healthy(now, 0.5);
    snapshot.record(
        SourceKey::new("patterns", Some("memory")),
        None,
        Duration::ZERO,
        now,
    );
    assert_eq!(
        reason(withheld(&cfg, &snapshot, true, &none, now)),
        Some((Reason::CollectorFailing, Some("memory".to_string())))
    );
    let snapshot = healthy(now, 0.5);
    snapshot.record(SourceKey::new("host", None), None, Duration::ZERO, now);
    assert_eq!(
        reason(withheld(&cfg, &snapshot, true, &none, now)),
        Some((Reason::CollectorFailing, None))
    );
}

#[test]
fn every_kind_of_backup_failure_withholds() {
    let (cfg, now, none) = (config(), SystemTime::now(), BTreeSet::new());
    let failing = Some((Reason::BackupFailing, Some("memory".to_string())));
    // Overdue: older than the database's max_age (1h), not the default 26 h.
    assert_eq!(
        reason(withheld(&cfg, &healthy(now, 1.5), true, &none, now)),
        failing
    );
    for (name, value) in [
        ("caretaker_backup_files", 0.0),
        ("caretaker_backup_last_verified_ok", 0.0),
    ] {
        let snapshot = healthy(now, 0.5);
        let mut figures = vec![
            ("caretaker_backup_files", 3.0),
            ("caretaker_backup_last_verified_ok", 1.0),
        ];
        figures.retain(|(n, _)| *n != name);
        figures.push((name, value));
        record(&snapshot, "backups", "memory", &figures);
        assert_eq!(
            reason(withheld(&cfg, &snapshot, true, &none, now)),
            failing,
            "{name}"
        );
    }
    let last_job_failed = BTreeSet::from(["memory".to_string()]);
    let snapshot = healthy(now, 0.5);
    assert_eq!(
        reason(withheld(&cfg, &snapshot, true, &last_job_failed, now)),
        failing
    );
    // A database without a backup section has no backup to fail.
    let other = BTreeSet::from(["notes".to_string()]);
    assert_eq!(withheld(&cfg, &snapshot, true, &other, now), None);
}

#[test]
fn counts_name_every_reason_and_result() {
    let mut counts = Counts::default();
    counts.withheld[Reason::BackupFailing as usize] += 2;
    counts.sent = 5;
    let set = counts.metrics();
    assert_eq!(
        set.value("caretaker_heartbeat_requests", &[("result", "success")]),
        Some(5.0)
    );
    assert_eq!(
        set.value("caretaker_heartbeat_requests", &[("result", "failure")]),
        Some(0.0)
    );
    assert_eq!(
        set.value(
            "caretaker_heartbeat_withheld",
            &[("reason", "backup_failing")]
        ),
        Some(2.0)
    );
    for r in Reason::ALL {
        assert!(set
            .value("caretaker_heartbeat_withheld", &[("reason", r.as_str())])
            .is_some());
    }
    assert_eq!(
        set.value("caretaker_heartbeat_last_success_timestamp_seconds", &[]),
        None
    );
}
