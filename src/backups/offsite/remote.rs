//! What the store holds: remote backups are those whose data object and
//! manifest are both there (the manifest goes up last); a data object or
//! sidecar without its manifest is an upload cut short (see [`super::sweep`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use futures::TryStreamExt;

use super::store::AGE_SUFFIX;
use super::{block_on, Offsite, OffsiteError};
use crate::backups::manifest::MANIFEST_SUFFIX;
use crate::backups::names::parse_backup_file_name;
use crate::backups::sidecar::CHECKSUM_SUFFIX;

/// One backup in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteBackup {
    /// The backup's file name (as locally, without `.age`).
    pub name: String,
    pub taken: SystemTime,
    /// Size of the data object (encrypted, when encrypted).
    pub size: u64,
    /// When the data object was written.
    pub uploaded: SystemTime,
}

/// What one object of the store is, by its file name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ObjectKind {
    Data,
    Sidecar,
    Manifest,
}

impl Offsite {
    /// The complete remote backups of this database, newest first.
    pub fn list(&self) -> Result<Vec<RemoteBackup>, OffsiteError> {
        Ok(self.complete(&self.objects()?))
    }

    /// Every object under the url's prefix.
    pub(super) fn objects(&self) -> Result<Vec<object_store::ObjectMeta>, OffsiteError> {
        let store = self.store.clone();
        let prefix = self.prefix();
        block_on(async move { store.list(prefix.as_ref()).try_collect().await })?
            .map_err(OffsiteError::from)
    }

    /// Which of this database's backups `meta` belongs to, and as what;
    /// `None` for anything else (another database's objects, strays).
    pub(super) fn classify(
        &self,
        meta: &object_store::ObjectMeta,
    ) -> Option<(String, SystemTime, ObjectKind)> {
        let file = meta.location.filename()?;
        let data_suffix = if self.encrypted() { AGE_SUFFIX } else { "" };
        let (name, kind) = if let Some(name) = file.strip_suffix(MANIFEST_SUFFIX) {
            (name, ObjectKind::Manifest)
        } else if let Some(name) = file.strip_suffix(CHECKSUM_SUFFIX) {
            (name, ObjectKind::Sidecar)
        } else {
            (file.strip_suffix(data_suffix)?, ObjectKind::Data)
        };
        let taken = parse_backup_file_name(&self.database, name)?;
        Some((name.to_string(), taken, kind))
    }

    /// The backups among `objects` whose data and manifest are both there.
    pub(super) fn complete(&self, objects: &[object_store::ObjectMeta]) -> Vec<RemoteBackup> {
        let mut data = BTreeMap::new();
        let mut manifests = std::collections::HashSet::new();
        for meta in objects {
            match self.classify(meta) {
                Some((name, _, ObjectKind::Manifest)) => {
                    manifests.insert(name);
                }
                Some((name, taken, ObjectKind::Data)) => {
                    let when = SystemTime::from(meta.last_modified);
                    data.insert(name, (taken, meta.size, when));
                }
                Some((_, _, ObjectKind::Sidecar)) | None => {}
            }
        }
        let mut out: Vec<RemoteBackup> = data
            .into_iter()
            .filter(|(name, _)| manifests.contains(name))
            .map(|(name, (taken, size, uploaded))| RemoteBackup {
                name,
                taken,
                size,
                uploaded,
            })
            .collect();
        out.sort_by(|a, b| b.taken.cmp(&a.taken).then_with(|| b.name.cmp(&a.name)));
        out
    }
}
