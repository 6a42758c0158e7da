//! Which backups to keep: seed 001's 30 daily days and seed 000's monthly
//! copies kept a year, as one rule.
//!
//! The decision is the pure function [`plan`] (a list of backups and a clock
//! in, the files to delete out), tested without a disk.
//! [`BackupSet::apply_retention`](super::BackupSet::apply_retention) is the
//! thin shell that lists the folder, applies the plan and deletes; the
//! `backup_retention` action and the `backup` action (after each new backup)
//! call it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::names::utc_fields;

/// One backup as the rule sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupEntry {
    pub path: PathBuf,
    /// When it was taken (the time in its name).
    pub taken: SystemTime,
    /// Its `.sha256` sidecar matches.
    pub verified: bool,
}

/// The backups to delete at `now`:
/// - every backup younger than `retention` is kept (even an unverified one,
///   which may still be in the making by another tool);
/// - older unverified files are deleted;
/// - the first (oldest) verified backup of each UTC calendar month is kept
///   while younger than `monthly_retention`;
/// - the newest verified backup is never deleted, however old.
///
/// Backups from the future (clock steps) count as age zero. The result is in
/// the order of `backups`.
pub fn plan(
    backups: &[BackupEntry],
    now: SystemTime,
    retention: Duration,
    monthly_retention: Duration,
) -> Vec<PathBuf> {
    let order = |a: &&BackupEntry, b: &&BackupEntry| {
        a.taken.cmp(&b.taken).then_with(|| a.path.cmp(&b.path))
    };
    let verified = || backups.iter().filter(|b| b.verified);
    let newest_verified = verified().max_by(order).map(|b| &b.path);
    let mut first_of_month: HashMap<(i64, u32), &BackupEntry> = HashMap::new();
    for b in verified() {
        let (year, month, ..) = utc_fields(b.taken);
        first_of_month
            .entry((year, month))
            .and_modify(|kept| {
                if order(&b, kept).is_lt() {
                    *kept = b;
                }
            })
            .or_insert(b);
    }
    let age = |b: &BackupEntry| now.duration_since(b.taken).unwrap_or(Duration::ZERO);
    let keep = |b: &BackupEntry| {
        if age(b) < retention {
            return true;
        }
        if !b.verified {
            return false;
        }
        let (year, month, ..) = utc_fields(b.taken);
        let monthly = first_of_month
            .get(&(year, month))
            .is_some_and(|first| first.path == b.path);
        (monthly && age(b) < monthly_retention) || newest_verified == Some(&b.path)
    };
    backups
        .iter()
        .filter(|b| !keep(b))
        .map(|b| b.path.clone())
        .collect()
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
