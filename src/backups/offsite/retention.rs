//! Remote retention: the same plan as local retention
//! ([`crate::backups::retention::plan`]), applied to the store's complete
//! backups, with the offsite section's `retention` and `monthly_retention`.
//!
//! Locally "verified" means the sidecar matches; remotely that takes a
//! download. So before anything is deleted, the newest remote backups are
//! downloaded, decrypted and checked against their sidecars, newest first,
//! until one passes: that one counts as the newest verified backup, which
//! the plan never deletes, and the newer ones that failed count as
//! unverified. When none passes, or none can be checked (encrypted uploads
//! without `decrypt_identity_file`), nothing is deleted. Nothing is
//! downloaded when the plan would delete nothing anyway.
//!
//! A backup's manifest is deleted first (it stops counting at once), then
//! its sidecar and data: a pass cut short leaves objects no listing counts,
//! which the next pass removes with the other uploads cut short
//! ([`super::sweep`]), before anything else.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use object_store::ObjectStoreExt;

use super::{block_on, Offsite, OffsiteError, RemoteBackup};
use crate::backups::retention::{plan, BackupEntry};
use crate::config::Encryption;

/// What one pass of remote retention removed (or would remove).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemotePruned {
    /// Names of the backups removed.
    pub backups: Vec<String>,
    /// Their data objects' stored size.
    pub bytes: u64,
    /// Objects of uploads cut short, past their grace ([`super::sweep`]).
    pub incomplete: Vec<super::sweep::Incomplete>,
}

/// The plan's entries: `verified_from` is the index of the newest remote
/// backup that verified; the newer ones count as unverified.
fn entries(remote: &[RemoteBackup], verified_from: usize) -> Vec<BackupEntry> {
    remote
        .iter()
        .enumerate()
        .map(|(i, r)| BackupEntry {
            path: PathBuf::from(&r.name),
            taken: r.taken,
            verified: i >= verified_from,
        })
        .collect()
}

impl Offsite {
    /// Applies retention at `now`; downloads go to hidden temporaries of
    /// `dir` (the local backup folder) and are removed at once.
    pub fn apply_retention(
        &self,
        now: SystemTime,
        dir: &Path,
        dry_run: bool,
    ) -> Result<RemotePruned, OffsiteError> {
        let (retention, monthly) = (self.cfg.retention, self.cfg.monthly_retention);
        let objects = self.objects()?;
        let incomplete = self.sweep_incomplete(&objects, now, dry_run)?;
        let remote = self.complete(&objects);
        if plan(&entries(&remote, 0), now, retention, monthly).is_empty() {
            return Ok(RemotePruned {
                incomplete,
                ..RemotePruned::default()
            });
        }
        let checkable = !matches!(self.cfg.encryption, Encryption::AgeRecipients(_))
            || self.cfg.decrypt_identity_file.is_some();
        if !checkable {
            return Err(OffsiteError::Failed(
                "remote retention needs decrypt_identity_file to check the backup it keeps; nothing deleted".into(),
            ));
        }
        let mut verified_from = None;
        for (i, r) in remote.iter().enumerate() {
            match self.fetch(&r.name, dir, &crate::progress::Reporter::none()) {
                Ok(_fetched) => {
                    verified_from = Some(i);
                    break;
                }
                Err(e) => {
                    tracing::warn!(database = %self.database, backup = %r.name, error = %e, "remote backup does not verify");
                }
            }
        }
        let Some(verified_from) = verified_from else {
            return Err(OffsiteError::Failed(
                "no remote backup verifies; nothing deleted".into(),
            ));
        };
        let doomed = plan(&entries(&remote, verified_from), now, retention, monthly);
        let mut pruned = RemotePruned {
            incomplete,
            ..RemotePruned::default()
        };
        for path in doomed {
            let name = path.to_string_lossy().into_owned();
            if !dry_run {
                self.delete_backup(&name)?;
            }
            tracing::info!(database = %self.database, backup = %name, dry_run, "remote backup past retention");
            pruned.bytes += remote.iter().find(|r| r.name == name).map_or(0, |r| r.size);
            pruned.backups.push(name);
        }
        Ok(pruned)
    }

    /// Deletes one remote backup: its manifest (it stops counting), its
    /// chain's links (manifests before deltas), its sidecar and data.
    fn delete_backup(&self, name: &str) -> Result<(), OffsiteError> {
        self.delete_keys(vec![self.manifest_key(name)])?;
        let (manifests, deltas): (Vec<_>, Vec<_>) = self
            .chain_objects(name)?
            .into_iter()
            .partition(|k| k.filename().is_some_and(|f| f.ends_with(".json")));
        self.delete_keys(manifests)?;
        self.delete_keys(deltas)?;
        self.delete_keys(vec![self.sidecar_key(name), self.data_key(name)])
    }

    /// Deletes `keys` in order; one already gone is no error.
    pub(super) fn delete_keys(
        &self,
        keys: Vec<object_store::path::Path>,
    ) -> Result<(), OffsiteError> {
        let store = self.store.clone();
        block_on(async move {
            for key in &keys {
                match store.delete(key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(OffsiteError::from(e)),
                }
            }
            Ok(())
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backups_newer_than_the_newest_that_verified_count_as_unverified() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let remote: Vec<RemoteBackup> = (0..3u64)
            .map(|i| RemoteBackup {
                name: format!("b{i}"),
                taken: t - Duration::from_secs(i * 100),
                size: 1,
                uploaded: t,
            })
            .collect();
        let e = entries(&remote, 1);
        assert_eq!(
            e.iter().map(|e| e.verified).collect::<Vec<_>>(),
            [false, true, true]
        );
        // Everything past retention: the newest that verified stays, the
        // newer one that did not goes.
        let doomed = plan(
            &e,
            t + Duration::from_secs(10_000),
            Duration::ZERO,
            Duration::ZERO,
        );
        assert_eq!(doomed, [PathBuf::from("b0"), PathBuf::from("b2")]);
    }
}
