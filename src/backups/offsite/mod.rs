//! Offsite copies: every verified backup also goes to object storage,
//! encrypted, so a dead disk or a deleted host does not take the backups
//! with it.
//!
//! Why it is built this way:
//! - `object_store` (Apache Arrow) speaks S3 and local folders (and GCS and
//!   Azure, not enabled yet) behind one trait, with multipart uploads and
//!   retries with backoff; 0.13 is the newest release on reqwest 0.12, so one
//!   HTTP stack is linked. S3-compatible endpoints get path-style requests,
//!   and no request checksum headers (which R2 and some MinIO setups refuse).
//! - Encryption is the standard age format (the `age` crate), so
//!   `age -d -i IDENTITY FILE | zstd -d` restores without caretaker. The
//!   encrypted file is written to a hidden temporary beside the backup, then
//!   uploaded in parts.
//! - A remote backup counts only once its manifest is there, and the
//!   manifest goes up last: an upload that fails or is killed midway leaves
//!   objects that no listing, verify or restore counts. The next backup
//!   uploads every local verified backup the store lacks, so a failed upload
//!   is retried then.
//! - All of it runs on a thread of its own with a small runtime (see
//!   [`block_on`]): actions are blocking code, called from a blocking thread.
//!
//! - [`store`]: opening the store and its keys;
//! - [`upload`]: encrypt and upload, and the failure count;
//! - [`remote`]: listing remote backups;
//! - [`retention`]: the local retention plan, applied to the store;
//! - [`sweep`]: removing what uploads cut short left behind;
//! - [`fetch`]: downloading, decrypting and checking one;
//! - [`links`]: the links of incremental chains, up and down.

pub mod fetch;
pub mod links;
pub mod remote;
pub mod retention;
pub mod store;
pub mod sweep;
pub mod upload;

pub use remote::RemoteBackup;
pub use store::Offsite;

/// Why an offsite operation failed. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum OffsiteError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("encryption: {0}")]
    Crypto(String),
    #[error("{0}")]
    Failed(String),
}

/// Runs `future` to completion on a thread of its own with a current-thread
/// runtime: callable from blocking code whether or not a runtime is around.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output, OffsiteError>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(rt.block_on(future))
        })
        .join()
        .unwrap_or_else(|_| Err(OffsiteError::Failed("the offsite thread panicked".into())))
    })
}
