//! Chains off the host: every link of a local chain (see
//! [`crate::backups::chain`]) goes to the store after its full backup, with
//! the same encryption, so `restore --from=offsite --at` works on a host that
//! has nothing but the configuration.
//!
//! Link `N` of the backup `NAME` is two objects under the url's prefix:
//! `NAME.chain/00000N.delta.zst.age` (or without `.age` when `encrypt =
//! false`) and `NAME.chain/00000N.json`, the link's manifest, uploaded last:
//! a link counts once its manifest is there, and links count from 1 up to
//! the first gap, as locally. Links go up in order and a pass stops at the
//! first failure, so the store never holds a link whose predecessor is
//! missing for long; remote retention removes a chain's objects with its
//! full backup (manifests first).
//!
//! A delta is checked where it is used: the rebuild compares every link
//! with its manifest's SHA-256 and the result with the database's.

use std::path::Path;
use std::time::{Instant, SystemTime};

use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};

use super::store::AGE_SUFFIX;
use super::upload::put_file;
use super::{block_on, Offsite, OffsiteError};
use crate::backups::chain::format::{delta_name, manifest_name, parse_manifest_name, Manifest};
use crate::backups::chain::pages::write_replacing;
use crate::backups::chain::{chains, Chain, CHAIN_SUFFIX};
use crate::backups::temporaries::{hidden_sibling, run_tag, TempFile};
use crate::backups::BackupSet;
use crate::config::Encryption;

/// What one pass of [`upload_pending_links`] sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinksUploaded {
    pub links: usize,
    pub bytes: u64,
}

impl Offsite {
    /// The key of the chain folder of backup `base`, and of one file in it.
    fn chain_key(&self, base: &str, file: Option<&str>) -> Key {
        let dir = self.key(&format!("{base}{CHAIN_SUFFIX}"));
        match file {
            Some(file) => dir.join(file),
            None => dir,
        }
    }

    fn delta_key(&self, base: &str, sequence: u64) -> Key {
        let suffix = if self.encrypted() { AGE_SUFFIX } else { "" };
        self.chain_key(base, Some(&format!("{}{suffix}", delta_name(sequence))))
    }

    fn link_manifest_key(&self, base: &str, sequence: u64) -> Key {
        self.chain_key(base, Some(&manifest_name(sequence)))
    }

    /// Every object under the chain folder of `base`.
    pub(super) fn chain_objects(&self, base: &str) -> Result<Vec<Key>, OffsiteError> {
        let store = self.store.clone();
        let dir = self.chain_key(base, None);
        let metas: Vec<object_store::ObjectMeta> =
            block_on(async move { store.list(Some(&dir)).try_collect().await })??;
        Ok(metas.into_iter().map(|m| m.location).collect())
    }

    /// How many links of `base` the store holds: 1.. up to the first gap.
    pub fn remote_link_count(&self, base: &str) -> Result<u64, OffsiteError> {
        let mut sequences: Vec<u64> = self
            .chain_objects(base)?
            .iter()
            .filter_map(|k| k.filename().and_then(parse_manifest_name))
            .collect();
        sequences.sort_unstable();
        Ok((1u64..)
            .zip(&sequences)
            .take_while(|(want, got)| want == *got)
            .count() as u64)
    }

    /// Link `sequence`'s manifest in the store.
    pub fn remote_link(&self, base: &str, sequence: u64) -> Result<Manifest, OffsiteError> {
        let store = self.store.clone();
        let key = self.link_manifest_key(base, sequence);
        let body = block_on(async move { store.get(&key).await?.bytes().await })??;
        serde_json::from_slice(&body).map_err(|e| {
            OffsiteError::Failed(format!("link {sequence} of {base}: not a manifest: {e}"))
        })
    }

    /// Uploads the links of `chain` past the first `uploaded`, in order.
    fn upload_links(&self, chain: &Chain, uploaded: u64) -> Result<LinksUploaded, OffsiteError> {
        let base = crate::backups::temporaries::file_name(&chain.base.path);
        let mut done = LinksUploaded::default();
        for link in chain.links.iter().skip(uploaded as usize) {
            let seq = link.manifest.sequence;
            let body = serde_json::to_vec_pretty(&link.manifest)
                .map_err(|e| OffsiteError::Failed(format!("link manifest: {e}")))?;
            let (source, _temp) = self.upload_source(&link.delta)?;
            let size = std::fs::metadata(&source)?.len();
            let store = self.store.clone();
            let (delta_key, manifest_key) = (
                self.delta_key(&base, seq),
                self.link_manifest_key(&base, seq),
            );
            block_on(async move {
                put_file(&*store, &delta_key, &source).await?;
                store.put(&manifest_key, PutPayload::from(body)).await?;
                Ok::<_, OffsiteError>(())
            })??;
            done.links += 1;
            done.bytes += size;
        }
        Ok(done)
    }

    /// Downloads the links of remote backup `base` taken at or before `at`
    /// into `chain_dir` (the local chain folder of its downloaded copy):
    /// each delta decrypted into place, its manifest last; a link this host
    /// already has is kept. Returns how many links serve `at`.
    pub fn fetch_links(
        &self,
        base: &str,
        at: SystemTime,
        chain_dir: &Path,
    ) -> Result<u64, OffsiteError> {
        let count = self.remote_link_count(base)?;
        crate::store::private::create_dir_all(chain_dir)?;
        let mut fetched = 0;
        for seq in 1..=count {
            let manifest = self.remote_link(base, seq)?;
            if manifest.taken().is_none_or(|t| t > at) {
                break;
            }
            fetched += 1;
            if chain_dir.join(manifest_name(seq)).exists() {
                // This host's own copy of the link (the rebuild checks it).
                continue;
            }
            let delta = chain_dir.join(delta_name(seq));
            let download = TempFile(hidden_sibling(
                &delta,
                &format!("download.{}.tmp", run_tag()),
            ));
            let store = self.store.clone();
            let key = self.delta_key(base, seq);
            let target = download.0.clone();
            block_on(async move {
                let body = store.get(&key).await?.bytes().await?;
                let mut out = crate::store::private::create_new(&target)?;
                std::io::Write::write_all(&mut out, &body)?;
                out.sync_all()?;
                Ok::<_, OffsiteError>(())
            })??;
            let plain = match &self.cfg.encryption {
                Encryption::Disabled => download,
                Encryption::AgeRecipients(_) => {
                    let plain =
                        TempFile(hidden_sibling(&delta, &format!("plain.{}.tmp", run_tag())));
                    self.decrypt(&download.0, &plain.0)?;
                    plain
                }
            };
            std::fs::rename(&plain.0, &delta)?;
            plain.keep();
            let body = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| OffsiteError::Failed(format!("link manifest: {e}")))?;
            write_replacing(&chain_dir.join(manifest_name(seq)), &body)?;
        }
        std::fs::File::open(chain_dir)?.sync_all()?;
        Ok(fetched)
    }
}

/// Uploads the links the store lacks of the `newest` local chains whose
/// full backup is in the store; stops at the first failure (the next pass,
/// after the next snapshot or backup, retries it).
pub fn upload_pending_links(
    offsite: &Offsite,
    set: &BackupSet,
    newest: usize,
    deadline: Instant,
) -> Result<LinksUploaded, OffsiteError> {
    let remote = offsite.list()?;
    let local: Vec<_> = set
        .list(deadline)?
        .into_iter()
        .filter(|b| b.verified)
        .take(newest)
        .collect();
    let mut done = LinksUploaded::default();
    for chain in chains(local)? {
        let name = crate::backups::temporaries::file_name(&chain.base.path);
        if chain.links.is_empty() || !remote.iter().any(|r| r.name == name) {
            continue;
        }
        let uploaded = offsite.remote_link_count(&name)?;
        let sent = offsite.upload_links(&chain, uploaded)?;
        done.links += sent.links;
        done.bytes += sent.bytes;
    }
    Ok(done)
}

/// After a snapshot: uploads the links the store lacks when the database
/// has an offsite store (`None` without one). A failure is counted
/// (`caretaker_offsite_upload_failures_total`) and logged, and never fails
/// the snapshot: the next snapshot or backup retries it.
pub fn upload_after_snapshot(
    database: &str,
    cfg: &crate::config::BackupConfig,
    deadline: Instant,
) -> Option<Result<LinksUploaded, OffsiteError>> {
    let offsite = cfg.offsite.as_ref()?;
    let set = BackupSet::new(&cfg.dir, database);
    // A snapshot extends the newest chain; the one before it may have taken
    // its last link after the newest full backup (as `recovery_point` reads
    // them). Older chains' missing links go up with the next backup.
    let result =
        Offsite::open(offsite, database).and_then(|o| upload_pending_links(&o, &set, 2, deadline));
    if let Err(e) = &result {
        let failures = super::upload::count_failure(&cfg.dir, database).unwrap_or(0);
        tracing::warn!(database, error = %e, failures, "offsite upload of deltas failed");
    }
    Some(result)
}
