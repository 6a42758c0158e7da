//! Opening the configured store, and where each backup's objects go.
//!
//! A backup `NAME` is three objects under the url's prefix: `NAME.age` (or
//! `NAME` when `encrypt = false`), `NAME.sha256` (the local sidecar: the
//! checksum of the compressed file, before encryption) and
//! `NAME.manifest.json`, uploaded last.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use super::OffsiteError;
use crate::backups::manifest::MANIFEST_SUFFIX;
use crate::backups::sidecar::CHECKSUM_SUFFIX;
use crate::config::{Encryption, OffsiteConfig, OffsiteLocation};

/// Suffix of encrypted objects.
pub const AGE_SUFFIX: &str = ".age";

/// One database's offsite store.
#[derive(Debug, Clone)]
pub struct Offsite {
    pub(super) store: Arc<dyn ObjectStore>,
    prefix: String,
    pub(super) database: String,
    pub(super) cfg: OffsiteConfig,
}

impl Offsite {
    /// Opens `cfg`'s store for `database`'s backups. Nothing is sent yet.
    pub fn open(cfg: &OffsiteConfig, database: &str) -> Result<Self, OffsiteError> {
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match &cfg.location {
            OffsiteLocation::Folder(dir) => {
                crate::store::private::create_dir_all(dir)?;
                (
                    Arc::new(LocalFileSystem::new_with_prefix(dir)?),
                    String::new(),
                )
            }
            OffsiteLocation::S3 { bucket, prefix } => (Arc::new(s3(cfg, bucket)?), prefix.clone()),
        };
        Ok(Self {
            store,
            prefix,
            database: database.to_string(),
            cfg: cfg.clone(),
        })
    }

    /// Whether uploads are encrypted.
    pub fn encrypted(&self) -> bool {
        matches!(self.cfg.encryption, Encryption::AgeRecipients(_))
    }

    /// The object holding backup `name`'s data.
    pub fn data_key(&self, name: &str) -> Key {
        let suffix = if self.encrypted() { AGE_SUFFIX } else { "" };
        self.key(&format!("{name}{suffix}"))
    }

    pub fn sidecar_key(&self, name: &str) -> Key {
        self.key(&format!("{name}{CHECKSUM_SUFFIX}"))
    }

    pub fn manifest_key(&self, name: &str) -> Key {
        self.key(&format!("{name}{MANIFEST_SUFFIX}"))
    }

    /// The url's prefix, as a key (`None` for the store's root).
    pub(super) fn prefix(&self) -> Option<Key> {
        (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()))
    }

    pub(super) fn key(&self, file: &str) -> Key {
        match self.prefix() {
            Some(p) => p.clone().join(file),
            None => Key::from(file),
        }
    }
}

/// An S3 (or S3-compatible) store: path-style with an endpoint, HTTP only
/// when allowed, a few retries with backoff, no checksum headers.
fn s3(cfg: &OffsiteConfig, bucket: &str) -> Result<object_store::aws::AmazonS3, OffsiteError> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_allow_http(cfg.allow_http)
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        })
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(10))
                .with_timeout(Duration::from_secs(300))
                .with_allow_http(cfg.allow_http),
        );
    if let Some(region) = &cfg.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &cfg.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    if let Some(file) = &cfg.credentials_file {
        let creds = read_credentials(file)?;
        builder = builder
            .with_access_key_id(creds.0)
            .with_secret_access_key(creds.1);
        if let Some(token) = creds.2 {
            builder = builder.with_token(token);
        }
    }
    Ok(builder.build()?)
}

/// `aws_access_key_id`, `aws_secret_access_key` and the optional
/// `aws_session_token` of an AWS-style credentials file (`key = value`
/// lines; the first value of each key is taken, `[profile]` lines ignored).
fn read_credentials(file: &Path) -> Result<(String, String, Option<String>), OffsiteError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        OffsiteError::Failed(format!(
            "cannot read credentials_file {}: {e}",
            file.display()
        ))
    })?;
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    match (value("aws_access_key_id"), value("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok((id, secret, value("aws_session_token"))),
        _ => Err(OffsiteError::Failed(format!(
            "credentials_file {} needs aws_access_key_id and aws_secret_access_key",
            file.display()
        ))),
    }
}
