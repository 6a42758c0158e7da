//! Bringing a remote backup back: download, decrypt, and check it against
//! its sidecar before anything uses it.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use object_store::ObjectStoreExt;

use super::{block_on, Offsite, OffsiteError};
use crate::backups::manifest::Manifest;
use crate::backups::sidecar::{sha256_file, sidecar_line, sidecar_of};
use crate::backups::temporaries::{run_tag, TempFile};
use crate::config::Encryption;
use crate::progress::Reporter;

/// A remote backup downloaded into a hidden temporary of the backup folder
/// (removed when dropped unless published), whose checksum matched.
pub struct Fetched {
    pub(crate) file: TempFile,
    pub name: String,
    pub sha256: String,
}

impl Fetched {
    /// The downloaded (decrypted, still compressed) file.
    pub fn path(&self) -> &Path {
        &self.file.0
    }

    /// Puts it in the backup folder `dir` as `NAME` with its sidecar, so it
    /// is a local backup like any other; an identical local copy is kept.
    pub fn publish(self, dir: &Path) -> Result<PathBuf, OffsiteError> {
        let target = dir.join(&self.name);
        if target.exists() {
            if sha256_file(&target)? == self.sha256 {
                return Ok(target);
            }
            return Err(OffsiteError::Failed(format!(
                "{} exists and differs from the remote backup of that name",
                target.display()
            )));
        }
        std::fs::rename(&self.file.0, &target)?;
        let placed = TempFile(target.clone());
        let sidecar_temp = TempFile(dir.join(format!(".{}.sha256.{}.tmp", self.name, run_tag())));
        let mut f = crate::store::private::create_new(&sidecar_temp.0)?;
        f.write_all(sidecar_line(&self.sha256, &self.name).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&sidecar_temp.0, sidecar_of(&target))?;
        std::fs::File::open(dir)?.sync_all()?;
        placed.keep();
        self.file.keep();
        Ok(target)
    }
}

impl Offsite {
    /// Downloads remote backup `name` into `dir` (created if missing),
    /// decrypts it with `decrypt_identity_file`, and checks it against the
    /// remote sidecar. The error says which step failed.
    pub fn fetch(
        &self,
        name: &str,
        dir: &Path,
        progress: &Reporter,
    ) -> Result<Fetched, OffsiteError> {
        crate::store::private::create_dir_all(dir)?;
        let tag = run_tag();
        let download = TempFile(dir.join(format!(".{name}.download.{tag}.tmp")));
        let store = self.store.clone();
        let (data_key, sidecar_key) = (self.data_key(name), self.sidecar_key(name));
        let target = download.0.clone();
        let (progress, what) = (progress.clone(), format!("downloading {name}"));
        let sidecar = block_on(async move {
            let mut out = crate::store::private::create_new(&target)?;
            let got = store.get(&data_key).await?;
            let mut shown = progress.stage(&what, Some(got.meta.size));
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                out.write_all(&chunk)?;
                shown.advance(chunk.len() as u64);
            }
            drop(shown);
            out.sync_all()?;
            let sidecar = store.get(&sidecar_key).await?.bytes().await?;
            Ok::<_, OffsiteError>(sidecar)
        })??;
        let expected = String::from_utf8_lossy(&sidecar)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let file = match &self.cfg.encryption {
            Encryption::Disabled => download,
            Encryption::AgeRecipients(_) => {
                let plain = TempFile(dir.join(format!(".{name}.offsite.{tag}.tmp")));
                self.decrypt(&download.0, &plain.0)?;
                plain
            }
        };
        let sha256 = sha256_file(&file.0)?;
        if sha256 != expected {
            return Err(OffsiteError::Failed(format!(
                "remote backup {name}: checksum does not match its .sha256"
            )));
        }
        Ok(Fetched {
            file,
            name: name.to_string(),
            sha256,
        })
    }

    /// The manifest uploaded with remote backup `name` (never encrypted:
    /// it holds counts and hashes, no rows).
    pub fn manifest(&self, name: &str) -> Result<Manifest, OffsiteError> {
        let store = self.store.clone();
        let key = self.manifest_key(name);
        let body = block_on(async move { store.get(&key).await?.bytes().await })??;
        serde_json::from_slice(&body)
            .map_err(|e| OffsiteError::Failed(format!("manifest of {name} is not valid: {e}")))
    }

    pub(super) fn decrypt(&self, src: &Path, dst: &Path) -> Result<(), OffsiteError> {
        let Some(identity_file) = &self.cfg.decrypt_identity_file else {
            return Err(OffsiteError::Crypto(
                "backup.offsite.decrypt_identity_file is not set".into(),
            ));
        };
        let identities = age::IdentityFile::from_file(identity_file.to_string_lossy().into_owned())
            .and_then(|f| {
                f.into_identities()
                    .map_err(|e| std::io::Error::other(e.to_string()))
            })
            .map_err(|e| {
                OffsiteError::Crypto(format!("cannot read {}: {e}", identity_file.display()))
            })?;
        let input = std::io::BufReader::new(std::fs::File::open(src)?);
        let crypto = |e: age::DecryptError| OffsiteError::Crypto(e.to_string());
        let mut reader = age::Decryptor::new_buffered(input)
            .map_err(crypto)?
            .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(crypto)?;
        let mut out = crate::store::private::create_new(dst)?;
        std::io::copy(&mut reader, &mut out)
            .map_err(|e| OffsiteError::Crypto(format!("decrypting: {e}")))?;
        out.sync_all()?;
        Ok(())
    }
}
