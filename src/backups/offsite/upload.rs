//! Encrypting and uploading backups, and counting the uploads that failed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

use super::{block_on, Offsite, OffsiteError};
use crate::backups::manifest::{describe_backup, manifest_of, write_local, Manifest};
use crate::backups::sidecar::sidecar_of;
use crate::backups::temporaries::{hidden_sibling, run_tag, TempFile};
use crate::backups::BackupSet;
use crate::config::Encryption;

/// Parts of a multipart upload (S3 wants at least 5 MiB but the last).
const PART_BYTES: usize = 16 << 20;

/// What one pass of [`upload_pending`] sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Uploaded {
    pub backups: usize,
    pub bytes: u64,
}

/// Uploads every verified local backup of `set` the store does not hold yet,
/// newest first; stops at the first failure (the next pass retries it).
pub fn upload_pending(
    offsite: &Offsite,
    set: &BackupSet,
    deadline: Instant,
) -> Result<Uploaded, OffsiteError> {
    let remote = offsite.list()?;
    let mut done = Uploaded::default();
    for backup in set.list(deadline)?.into_iter().filter(|b| b.verified) {
        let name = crate::backups::temporaries::file_name(&backup.path);
        if remote.iter().any(|r| r.name == name) {
            continue;
        }
        let manifest = local_manifest(&backup.path, set.database(), backup.taken, deadline)?;
        done.bytes += upload_one(offsite, &backup.path, &manifest)?;
        done.backups += 1;
    }
    Ok(done)
}

/// The manifest beside `backup`, written first when missing.
pub fn local_manifest(
    backup: &Path,
    database: &str,
    taken: std::time::SystemTime,
    deadline: Instant,
) -> Result<Manifest, OffsiteError> {
    if let Ok(text) = std::fs::read(manifest_of(backup)) {
        if let Ok(m) = serde_json::from_slice::<Manifest>(&text) {
            return Ok(m);
        }
    }
    let manifest = describe_backup(backup, database, taken, deadline)
        .map_err(|e| OffsiteError::Failed(format!("manifest of {}: {e}", backup.display())))?;
    write_local(backup, &manifest)?;
    Ok(manifest)
}

/// Encrypts and uploads one backup: data, sidecar, then the manifest, which
/// makes it count. Returns the bytes of the uploaded data object.
pub fn upload_one(
    offsite: &Offsite,
    backup: &Path,
    manifest: &Manifest,
) -> Result<u64, OffsiteError> {
    let name = crate::backups::temporaries::file_name(backup);
    let sidecar = std::fs::read(sidecar_of(backup))?;
    let manifest_body = serde_json::to_vec_pretty(manifest)
        .map_err(|e| OffsiteError::Failed(format!("manifest: {e}")))?;
    let (source, _temp) = offsite.upload_source(backup)?;
    let size = std::fs::metadata(&source)?.len();
    let store = offsite.store.clone();
    let (data_key, sidecar_key, manifest_key) = (
        offsite.data_key(&name),
        offsite.sidecar_key(&name),
        offsite.manifest_key(&name),
    );
    block_on(async move {
        put_file(&*store, &data_key, &source).await?;
        store.put(&sidecar_key, PutPayload::from(sidecar)).await?;
        store
            .put(&manifest_key, PutPayload::from(manifest_body))
            .await?;
        Ok::<_, OffsiteError>(())
    })??;
    Ok(size)
}

impl Offsite {
    /// The file to upload for `file`: an encrypted hidden sibling (removed
    /// when the returned guard drops), or `file` itself without encryption.
    pub(super) fn upload_source(
        &self,
        file: &Path,
    ) -> Result<(PathBuf, Option<TempFile>), OffsiteError> {
        match &self.cfg.encryption {
            Encryption::AgeRecipients(recipients) => {
                let temp = TempFile(hidden_sibling(file, &format!("age.{}.tmp", run_tag())));
                encrypt_file(file, &temp.0, recipients)?;
                Ok((temp.0.clone(), Some(temp)))
            }
            Encryption::Disabled => Ok((file.to_path_buf(), None)),
        }
    }
}

/// Uploads a file in parts (one request for a small one).
pub(super) async fn put_file(
    store: &dyn object_store::ObjectStore,
    key: &object_store::path::Path,
    path: &Path,
) -> Result<(), OffsiteError> {
    let mut file = std::fs::File::open(path)?;
    if file.metadata()?.len() <= PART_BYTES as u64 {
        let mut body = Vec::new();
        file.read_to_end(&mut body)?;
        store.put(key, PutPayload::from(body)).await?;
        return Ok(());
    }
    let upload = store.put_multipart(key).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e.into());
            }
        };
        if n == 0 {
            break;
        }
        if let Err(e) = writer.wait_for_capacity(4).await {
            let _ = writer.abort().await;
            return Err(e.into());
        }
        writer.write(&buf[..n]);
    }
    writer.finish().await?;
    Ok(())
}

/// Encrypts `src` to `recipients` into a new file `dst` (age format, binary).
pub fn encrypt_file(src: &Path, dst: &Path, recipients: &[String]) -> Result<(), OffsiteError> {
    let parsed: Vec<age::x25519::Recipient> = recipients
        .iter()
        .map(|r| age::x25519::Recipient::from_str(r))
        .collect::<Result<_, _>>()
        .map_err(|e| OffsiteError::Crypto(format!("recipient: {e}")))?;
    let encryptor =
        age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| OffsiteError::Crypto(e.to_string()))?;
    let out = crate::store::private::create_new(dst)?;
    let mut writer = encryptor.wrap_output(std::io::BufWriter::new(out))?;
    std::io::copy(&mut std::fs::File::open(src)?, &mut writer)?;
    let out = writer.finish()?;
    out.into_inner()
        .map_err(|e| OffsiteError::Io(e.into_error()))?
        .sync_all()?;
    Ok(())
}

/// The file counting `database`'s failed uploads, in its backup folder
/// (hidden: never a backup).
fn failures_file(dir: &Path, database: &str) -> PathBuf {
    dir.join(format!(".{database}.offsite-failures"))
}

/// Failed uploads of `database` so far (0 when never counted).
pub fn upload_failures(dir: &Path, database: &str) -> u64 {
    std::fs::read_to_string(failures_file(dir, database))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Counts one more failed upload (temporary name, fsync, rename).
pub fn count_failure(dir: &Path, database: &str) -> std::io::Result<u64> {
    let n = upload_failures(dir, database) + 1;
    let path = failures_file(dir, database);
    let temp = TempFile(hidden_sibling(&path, &format!("{}.tmp", run_tag())));
    let mut f = crate::store::private::create_new(&temp.0)?;
    f.write_all(format!("{n}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&temp.0, &path)?;
    temp.keep();
    Ok(n)
}
