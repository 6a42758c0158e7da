//! `VACUUM`: rewrites the database without its free pages.
//!
//! It needs room for a full copy and holds the write lock for its whole run,
//! so it is off until configured, refuses when free space is below the
//! database's size, and can be confined to a maintenance window.

use std::time::{Instant, SystemTime};

use super::classify;
use super::{Action, ActionContext, ActionError, Outcome};
use crate::store::maintenance::open_maintenance;
use crate::store::space::space_of;

pub struct Vacuum;

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Minutes after UTC midnight of `now`.
pub fn utc_minute(now: SystemTime) -> u32 {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    ((secs % 86_400) / 60) as u32
}

impl Action for Vacuum {
    fn mutates(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let cfg = &ctx.database.vacuum;
        if !cfg.enabled {
            return Err(ActionError::NotConfigured(
                "vacuum is disabled; set [database.vacuum] enabled = true".into(),
            ));
        }
        if let Some(window) = cfg.window {
            if !window.contains(utc_minute(ctx.now)) {
                let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
                return Err(ActionError::Refused(format!(
                    "outside the maintenance window {}-{} UTC; a run by hand may override it \
                     with --ignore-window (API: ignore_window=true)",
                    hm(window.start),
                    hm(window.end)
                )));
            }
        }
        let path = &ctx.database.path;
        let before = file_size(path);
        // The copy is written where the file really is, through a symlinked path.
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        let dir = match real.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => std::path::Path::new("."),
        };
        let Some(avail) = space_of(dir).map(|f| f.avail) else {
            return Err(ActionError::Refused(format!(
                "cannot tell the free space of {}",
                dir.display()
            )));
        };
        if avail < before {
            return Err(ActionError::Refused(format!(
                "{avail} bytes free, VACUUM needs at least the database's {before} bytes"
            )));
        }
        let started = Instant::now();
        let conn = open_maintenance(path, ctx.deadline).map_err(classify)?;
        let freelist: i64 = conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .map_err(classify)?;
        if ctx.dry_run {
            return Ok(Outcome::new(format!(
                "dry run: VACUUM would release about {freelist} free pages"
            ))
            .figure("freelist_pages", freelist as f64));
        }
        // SQLite says nothing of VACUUM's progress: a stage without bytes.
        let shown = ctx
            .progress
            .stage(&format!("vacuum {}", ctx.database.name), None);
        conn.execute_batch("VACUUM").map_err(classify)?;
        drop(shown);
        // In WAL mode the rewritten pages sit in the log until a checkpoint.
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let after = file_size(path);
        Ok(
            Outcome::new(format!("VACUUM released {freelist} free pages"))
                .figure("bytes_before", before as f64)
                .figure("bytes_after", after as f64)
                .figure("bytes_freed", before.saturating_sub(after) as f64)
                .figure("seconds", started.elapsed().as_secs_f64()),
        )
    }
}
