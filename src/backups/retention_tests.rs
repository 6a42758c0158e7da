//! The retention rule with an injected clock: no disk.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::{plan, BackupEntry};
use crate::backups::names::{backup_file_name, parse_backup_file_name, utc_fields};
use crate::config::Compression;

const DAY: Duration = Duration::from_secs(86_400);
const RETENTION: Duration = Duration::from_secs(30 * 86_400);
const MONTHLY: Duration = Duration::from_secs(365 * 86_400);

/// The time written `YYYYMMDDTHHMMSSZ`.
fn at(stamp: &str) -> SystemTime {
    parse_backup_file_name("db", &format!("db-{stamp}.db.zst")).expect("valid stamp")
}

fn entry(taken: SystemTime, verified: bool) -> BackupEntry {
    BackupEntry {
        path: PathBuf::from(backup_file_name("db", taken, Compression::Zstd)),
        taken,
        verified,
    }
}

fn names(paths: &[PathBuf]) -> BTreeSet<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

#[test]
fn names_round_trip_and_reject_what_is_not_ours() {
    let t = at("20261105T020304Z");
    assert_eq!(
        backup_file_name("memory", t, Compression::Zstd),
        "memory-20261105T020304.000Z.db.zst"
    );
    let later = t + Duration::from_millis(7);
    assert_eq!(
        backup_file_name("memory", later, Compression::Gzip),
        "memory-20261105T020304.007Z.db.gz"
    );
    assert_eq!(
        parse_backup_file_name("memory", "memory-20261105T020304.007Z.db.gz"),
        Some(later)
    );
    // Names of older versions, in whole seconds, are still backups.
    assert_eq!(
        parse_backup_file_name("memory", "memory-20261105T020304Z.db.gz"),
        Some(t)
    );
    assert_eq!(utc_fields(t), (2026, 11, 5, 2, 3, 4));
    assert_eq!(
        utc_fields(at("20240229T235959Z")),
        (2024, 2, 29, 23, 59, 59)
    );
    for other in [
        "memory-20260231T000000Z.db.zst", // 31 February
        "memory-20250229T000000Z.db.zst", // not a leap year
        "memory-20261105T240000Z.db.zst", // hour 24
        "memory-20261105T020304Z.db",     // not compressed by us
        "memory-20261105T020304Z.db.zst.sha256",
        "memory-2-20261105T020304Z.db.zst", // database "memory-2"
        "memory.db.20251015-020000.backup.gz", // the seed's naming
        ".memory-20261105T020304Z.db.zst.tmp",
        "memory-+0261105T020304Z.db.zst",
        "memory-20261105T020304.0a7Z.db.zst",
        "memory-20261105T020304-007Z.db.zst",
        "memory-2-20261105T020304.007Z.db.zst", // database "memory-2"
    ] {
        assert_eq!(parse_backup_file_name("memory", other), None, "{other}");
    }
    assert_eq!(
        parse_backup_file_name("memory-2", "memory-20261105T020304Z.db.zst"),
        None
    );
    // Before the epoch: fields still computed, no panic.
    let before = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
    assert_eq!(utc_fields(before), (1969, 12, 31, 23, 59, 59));
}

#[test]
fn nothing_to_delete_in_an_empty_or_young_folder() {
    let now = at("20261105T020000Z");
    assert!(plan(&[], now, RETENTION, MONTHLY).is_empty());
    let young: Vec<BackupEntry> = (0..30).map(|d| entry(now - DAY * d, d % 3 != 0)).collect();
    assert!(plan(&young, now, RETENTION, MONTHLY).is_empty());
}

#[test]
fn a_year_of_daily_backups_keeps_thirty_days_and_one_per_month() {
    let now = at("20261105T020000Z");
    let all: Vec<BackupEntry> = (0..420).map(|d| entry(now - DAY * d, true)).collect();
    let deleted = names(&plan(&all, now, RETENTION, MONTHLY));

    // The rule computed independently, from the names' text: a month is
    // the name's YYYYMM, the first of a month the smallest name in it.
    let mut first_of_month = std::collections::BTreeMap::new();
    for e in &all {
        let name = e.path.display().to_string();
        let month = name[3..9].to_string();
        let first = first_of_month.entry(month).or_insert_with(|| name.clone());
        if name < *first {
            *first = name;
        }
    }
    let firsts: BTreeSet<String> = first_of_month.into_values().collect();
    let mut expected = BTreeSet::new();
    for (days, e) in all.iter().enumerate() {
        let name = e.path.display().to_string();
        let young = (days as u64) < 30;
        let monthly = firsts.contains(&name) && (days as u64) < 365;
        if !young && !monthly && days != 0 {
            expected.insert(name);
        }
    }
    assert_eq!(deleted, expected);
    // 30 young ones plus the monthly keepers older than that.
    let kept = all.len() - deleted.len();
    assert!((30 + 11..=30 + 13).contains(&kept), "kept {kept}");
    assert!(!deleted.contains("db-20261101T020000.000Z.db.zst"));
    assert!(!deleted.contains("db-20251201T020000.000Z.db.zst"));
    assert!(deleted.contains("db-20251102T020000.000Z.db.zst"));
    // 2025-11-01 is older than 365 days at 2026-11-05: not kept.
    assert!(deleted.contains("db-20251101T020000.000Z.db.zst"));
}

#[test]
fn the_newest_verified_backup_survives_everything() {
    let now = at("20261105T020000Z");
    let old_good = entry(at("20240110T020000Z"), true);
    let older_good = entry(at("20240105T020000Z"), true);
    let newer_bad = entry(at("20240601T020000Z"), false);
    let all = vec![older_good.clone(), old_good.clone(), newer_bad.clone()];
    let deleted = plan(&all, now, RETENTION, MONTHLY);
    assert_eq!(deleted, vec![older_good.path, newer_bad.path]);
    // Even with zero retention of both kinds.
    let deleted = plan(&all, now, Duration::ZERO, Duration::ZERO);
    assert!(!deleted.contains(&old_good.path));
}

#[test]
fn unverified_files_go_once_past_retention_and_never_keep_a_month() {
    let now = at("20261105T020000Z");
    let young_bad = entry(at("20261101T010000Z"), false);
    let first_bad = entry(at("20260901T000000Z"), false);
    let second_good = entry(at("20260902T000000Z"), true);
    let third_good = entry(at("20260903T000000Z"), true);
    let newest = entry(at("20261104T020000Z"), true);
    let all = vec![
        young_bad.clone(),
        first_bad.clone(),
        second_good.clone(),
        third_good.clone(),
        newest,
    ];
    let deleted = plan(&all, now, RETENTION, MONTHLY);
    assert_eq!(deleted, vec![first_bad.path, third_good.path]);
    assert!(!deleted.contains(&young_bad.path));
    assert!(!deleted.contains(&second_good.path));
}

#[test]
fn months_are_utc_calendar_months() {
    let now = at("20261205T000000Z");
    let last_of_october = entry(at("20261031T233000Z"), true);
    let first_of_november = entry(at("20261101T003000Z"), true);
    let later_in_november = entry(at("20261101T013000Z"), true);
    let newest = entry(at("20261204T000000Z"), true);
    let all = vec![
        later_in_november.clone(),
        first_of_november,
        last_of_october,
        newest,
    ];
    assert_eq!(
        plan(&all, now, RETENTION, MONTHLY),
        vec![later_in_november.path]
    );
}

#[test]
fn monthly_copies_expire_and_the_future_counts_as_now() {
    let now = at("20261105T020000Z");
    let expired_monthly = entry(at("20251001T020000Z"), true);
    let kept_monthly = entry(at("20251201T020000Z"), true);
    let from_the_future = entry(at("20270101T000000Z"), false);
    let newest = entry(at("20261105T010000Z"), true);
    let all = vec![
        expired_monthly.clone(),
        kept_monthly,
        from_the_future,
        newest,
    ];
    assert_eq!(
        plan(&all, now, RETENTION, MONTHLY),
        vec![expired_monthly.path]
    );
}

#[test]
fn the_input_order_does_not_matter_and_ties_are_broken_by_name() {
    let now = at("20261105T020000Z");
    let t = at("20260315T000000Z");
    let a = BackupEntry {
        path: PathBuf::from("a"),
        taken: t,
        verified: true,
    };
    let b = BackupEntry {
        path: PathBuf::from("b"),
        taken: t,
        verified: true,
    };
    let newest = entry(at("20261105T000000Z"), true);
    let forward = plan(
        &[a.clone(), b.clone(), newest.clone()],
        now,
        RETENTION,
        MONTHLY,
    );
    let backward = plan(&[newest, b.clone(), a], now, RETENTION, MONTHLY);
    assert_eq!(forward, vec![b.path.clone()]);
    assert_eq!(backward, vec![b.path]);
}
