//! Which backups to keep: seed 001's 30 daily days and seed 000's monthly
//! copies kept a year, as one rule.
//!
//! The decision is the pure function [`plan`] (a list of backups and a clock
//! in, the files to delete out), tested without a disk. [`BackupRetention`]
//! is the thin shell that lists the folder, applies the plan and deletes; the
//! `backup` action calls the same shell after each new backup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{Action, ActionContext, ActionError, Outcome};
use crate::collector::backups::{database_backups, utc_fields, CHECKSUM_SUFFIX};
use crate::config::BackupConfig;

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

/// The `backup_retention` action: deletes the backups [`plan`] names, each
/// with its sidecar.
pub struct BackupRetention;

/// What one pass of retention removed (or would remove, in a dry run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pruned {
    pub files: Vec<PathBuf>,
    /// Backups and sidecars together.
    pub bytes: u64,
}

impl Action for BackupRetention {
    fn mutates(&self) -> bool {
        false
    }

    fn writes_files(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let cfg = ctx.backup()?;
        let pruned = apply(&ctx.database.name, cfg, ctx.now, ctx.deadline, ctx.dry_run)?;
        let verb = if ctx.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let summary = format!(
            "{verb} {} old backups of {} ({} bytes)",
            pruned.files.len(),
            ctx.database.name,
            pruned.bytes
        );
        Ok(Outcome::new(summary)
            .figure("files_removed", pruned.files.len() as f64)
            .figure("bytes_freed", pruned.bytes as f64))
    }
}

/// Lists `database`'s backups, applies [`plan`] and (unless `dry_run`)
/// deletes: the sidecar first, so a crash in between leaves an unverified
/// file that the next pass removes, never a sidecar without its backup.
pub fn apply(
    database: &str,
    cfg: &BackupConfig,
    now: SystemTime,
    deadline: Instant,
    dry_run: bool,
) -> Result<Pruned, ActionError> {
    let backups = database_backups(&cfg.dir, database, deadline)?;
    let entries: Vec<BackupEntry> = backups
        .iter()
        .map(|b| BackupEntry {
            path: b.path.clone(),
            taken: b.taken,
            verified: b.verified,
        })
        .collect();
    let doomed = plan(&entries, now, cfg.retention, cfg.monthly_retention);
    let mut pruned = Pruned::default();
    for path in doomed {
        let sidecar = sidecar_of(&path);
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let bytes = size(&path) + size(&sidecar);
        if !dry_run {
            remove_if_present(&sidecar)?;
            remove_if_present(&path)?;
        }
        tracing::info!(file = %path.display(), dry_run, "backup past retention");
        pruned.bytes += bytes;
        pruned.files.push(path);
    }
    if !dry_run && !pruned.files.is_empty() {
        std::fs::File::open(&cfg.dir)?.sync_all()?;
    }
    Ok(pruned)
}

/// `<backup>.sha256`.
pub fn sidecar_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(CHECKSUM_SUFFIX);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
