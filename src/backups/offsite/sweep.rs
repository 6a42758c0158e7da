//! Uploads cut short: a data object or sidecar whose manifest never went up
//! (the process was killed, the store went away between the parts). No
//! listing counts them, but they cost storage for ever once the local
//! backup they copied is gone, so remote retention removes them once they
//! are older than [`INCOMPLETE_GRACE`] by the store's own clock. The grace
//! leaves an upload in progress alone: its manifest follows its data within
//! seconds, and a day also covers a host clock far off the store's.
//!
//! Multipart uploads that were never completed are not objects at all and
//! no listing shows them; the store's lifecycle rule
//! (`AbortIncompleteMultipartUpload`) removes those, see docs/offsite.md.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::remote::ObjectKind;
use super::{Offsite, OffsiteError};

/// How old an object without its manifest must be before it is removed.
pub const INCOMPLETE_GRACE: Duration = Duration::from_secs(86_400);

/// One object left by an upload cut short.
#[derive(Debug, Clone, PartialEq)]
pub struct Incomplete {
    /// The object's key.
    pub key: String,
    pub size: u64,
}

impl Offsite {
    /// The objects among `objects` that belong to an upload cut short more
    /// than [`INCOMPLETE_GRACE`] before `now`.
    pub(super) fn incomplete(
        &self,
        objects: &[object_store::ObjectMeta],
        now: SystemTime,
    ) -> Vec<(object_store::path::Path, u64)> {
        let classified: Vec<_> = objects
            .iter()
            .filter_map(|meta| self.classify(meta).map(|c| (meta, c)))
            .collect();
        let with_manifest: HashSet<&str> = classified
            .iter()
            .filter(|(_, (_, _, kind))| *kind == ObjectKind::Manifest)
            .map(|(_, (name, _, _))| name.as_str())
            .collect();
        classified
            .iter()
            .filter(|(_, (name, _, _))| !with_manifest.contains(name.as_str()))
            .filter(|(meta, _)| {
                now.duration_since(SystemTime::from(meta.last_modified))
                    .is_ok_and(|age| age > INCOMPLETE_GRACE)
            })
            .map(|(meta, _)| (meta.location.clone(), meta.size))
            .collect()
    }

    /// Removes (unless `dry_run`) the objects [`Self::incomplete`] names.
    pub(super) fn sweep_incomplete(
        &self,
        objects: &[object_store::ObjectMeta],
        now: SystemTime,
        dry_run: bool,
    ) -> Result<Vec<Incomplete>, OffsiteError> {
        let doomed = self.incomplete(objects, now);
        if !dry_run && !doomed.is_empty() {
            self.delete_keys(doomed.iter().map(|(key, _)| key.clone()).collect())?;
        }
        Ok(doomed
            .into_iter()
            .map(|(key, size)| {
                tracing::info!(database = %self.database, object = %key, dry_run, "incomplete upload past its grace");
                Incomplete {
                    key: key.to_string(),
                    size,
                }
            })
            .collect())
    }
}
