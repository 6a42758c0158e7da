//! Checksum sidecars: `<backup>.sha256`, in the `sha256sum` format the
//! runbooks write (`<hex>  <name>`).
//!
//! A backup counts only when its sidecar matches the file: a half-written or
//! tampered file is "unverified", never a backup. The pipeline writes the
//! sidecar last, so a crash in between leaves an unverified file.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Suffix of checksum sidecars.
pub const CHECKSUM_SUFFIX: &str = ".sha256";

/// `<backup>.sha256`.
pub fn sidecar_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(CHECKSUM_SUFFIX);
    PathBuf::from(name)
}

/// The sidecar's text for the backup `name` whose SHA-256 is `sha256`.
pub fn sidecar_line(sha256: &str, name: &str) -> String {
    format!("{sha256}  {name}\n")
}

/// The SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// Reads a `sha256sum` sidecar (`<hex>  <name>`) and compares it with the file.
pub fn checksum_matches(path: &Path, sidecar: &Path) -> std::io::Result<bool> {
    let text = std::fs::read_to_string(sidecar)?;
    let expected = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if expected.len() != 64 {
        return Ok(false);
    }
    Ok(sha256_file(path)? == expected)
}
