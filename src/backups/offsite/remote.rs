//! What the store holds: remote backups are those whose data object and
//! manifest are both there (the manifest goes up last).

use std::collections::BTreeMap;
use std::time::SystemTime;

use futures::TryStreamExt;

use super::store::AGE_SUFFIX;
use super::{block_on, Offsite, OffsiteError};
use crate::backups::manifest::MANIFEST_SUFFIX;
use crate::backups::names::parse_backup_file_name;

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

impl Offsite {
    /// The complete remote backups of this database, newest first.
    pub fn list(&self) -> Result<Vec<RemoteBackup>, OffsiteError> {
        let store = self.store.clone();
        let prefix = self.prefix();
        let objects: Vec<object_store::ObjectMeta> =
            block_on(async move { store.list(prefix.as_ref()).try_collect().await })??;
        let mut data = BTreeMap::new();
        let mut manifests = std::collections::HashSet::new();
        let data_suffix = if self.encrypted() { AGE_SUFFIX } else { "" };
        for meta in objects {
            let Some(file) = meta.location.filename() else {
                continue;
            };
            if let Some(name) = file.strip_suffix(MANIFEST_SUFFIX) {
                manifests.insert(name.to_string());
            } else if let Some(name) = file.strip_suffix(data_suffix) {
                if let Some(taken) = parse_backup_file_name(&self.database, name) {
                    let when = SystemTime::from(meta.last_modified);
                    data.insert(name.to_string(), (taken, meta.size, when));
                }
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
        Ok(out)
    }
}
