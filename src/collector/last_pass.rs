//! A collector's last pass over a database, kept so that a file that has
//! not changed is not read again.
//!
//! The figures of a pass stand while the file's [`FileStamp`] is the same and
//! the clock has not reached the moment the pass said they might change: the
//! pass works that moment out from the rows it read, so a skipped pass
//! publishes exactly what a full one would. The figures that move with the
//! clock alone are carried forward through such moments instead, by the
//! collectors that own them (see [`super::pattern_clock`] and
//! [`super::expiry`]).
//! An idle fleet then costs a `stat` and a header read per database per
//! pass; a full pass of a 2,000-pattern database is a few milliseconds of CPU.

use std::sync::Mutex;
use std::time::SystemTime;

use crate::metrics::{unix_seconds, MetricSet};
use crate::store::stamp::FileStamp;

#[derive(Debug)]
struct Pass {
    stamp: FileStamp,
    /// Unix second from which a clock-dependent figure may differ; `None`: never.
    until: Option<i64>,
    set: MetricSet,
}

/// The last pass of one collector on one database.
#[derive(Debug, Default)]
pub struct LastPass {
    pass: Mutex<Option<Pass>>,
}

impl LastPass {
    /// The last pass's figures when `stamp` is the one they were read under
    /// and `now` (unix seconds) is before any of them changes with the clock.
    pub fn reuse(&self, stamp: &FileStamp, now: i64) -> Option<MetricSet> {
        let pass = self.pass.lock().unwrap_or_else(|e| e.into_inner());
        let pass = pass.as_ref()?;
        let fresh = pass.until.is_none_or(|until| now < until);
        (pass.stamp == *stamp && fresh).then(|| pass.set.clone())
    }

    /// Keeps the figures of a pass read under `stamp` (taken before reading).
    pub fn keep(&self, stamp: FileStamp, until: Option<i64>, set: &MetricSet) {
        *self.pass.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pass {
            stamp,
            until,
            set: set.clone(),
        });
    }

    /// The last pass's figures while the file at `path` stands still and the
    /// clock has not reached them, else `read`'s full pass, kept for the next
    /// call with the moment (unix seconds) its clock-dependent figures move.
    pub fn or_read<E>(
        &self,
        path: &std::path::Path,
        read: impl FnOnce() -> Result<(MetricSet, Option<i64>), E>,
    ) -> Result<MetricSet, E> {
        // Taken before reading: a write during the pass shows at the next.
        let stamp = FileStamp::read(path).ok();
        if let Some(set) = stamp.as_ref().and_then(|s| self.reuse(s, now_seconds())) {
            return Ok(set);
        }
        self.forget();
        let (set, until) = read()?;
        if let Some(stamp) = stamp {
            self.keep(stamp, until, &set);
        }
        Ok(set)
    }

    /// Forgets the last pass (the file could not be read).
    pub fn forget(&self) {
        *self.pass.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The current unix second, as SQLite's `'now'` rounds it down.
pub fn now_seconds() -> i64 {
    unix_seconds(SystemTime::now()).floor() as i64
}

/// The earlier of two moments, either possibly absent (never).
pub fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_stands_until_the_file_changes_or_its_moment_comes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.db");
        std::fs::write(&path, b"x").expect("write");
        let stamp = FileStamp::read(&path).expect("stamp");
        let mut set = MetricSet::new();
        set.gauge("a", "a", vec![], 1.0);
        let last = LastPass::default();
        assert_eq!(last.reuse(&stamp, 0), None, "nothing kept yet");
        last.keep(stamp.clone(), Some(100), &set);
        assert_eq!(last.reuse(&stamp, 99), Some(set.clone()));
        assert_eq!(last.reuse(&stamp, 100), None, "a figure may have moved");
        last.keep(stamp.clone(), None, &set);
        assert_eq!(last.reuse(&stamp, i64::MAX), Some(set.clone()));
        std::fs::write(&path, b"xy").expect("write");
        let changed = FileStamp::read(&path).expect("stamp");
        assert_eq!(last.reuse(&changed, 0), None);
        last.forget();
        assert_eq!(last.reuse(&stamp, 0), None);
    }
}
