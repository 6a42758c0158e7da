//! The database at one link of a chain: the full backup decompressed, then
//! each delta in order, every link's checksum verified before it is applied
//! and the result's SHA-256 compared with the last manifest. A failure names
//! the link, so the operator knows which file is bad and which moments
//! before it still restore.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::format::apply;
use super::Chain;
use crate::backups::sidecar::{checksum_matches, sha256_file, sidecar_of};
use crate::backups::temporaries::{hidden_sibling, run_tag, TempFile};
use crate::backups::verify::{check_database_file, decompress_into};
use crate::config::IntegrityMode;
use crate::progress::Reporter;

/// Which file of a chain failed, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {why}", .link.display())]
pub struct BrokenLink {
    pub link: PathBuf,
    pub why: String,
}

fn broken(link: &Path, why: impl ToString) -> BrokenLink {
    BrokenLink {
        link: link.to_path_buf(),
        why: why.to_string(),
    }
}

/// Writes the state after `links` links of `chain` into `out` (a new, empty
/// file at `out_path`) and returns its SHA-256.
pub fn rebuild(
    chain: &Chain,
    links: usize,
    out: &mut File,
    out_path: &Path,
    deadline: Instant,
    progress: &Reporter,
) -> Result<String, BrokenLink> {
    let base = &chain.base.path;
    match checksum_matches(base, &sidecar_of(base)) {
        Ok(true) => {}
        Ok(false) => return Err(broken(base, "the full backup does not match its .sha256")),
        Err(e) => return Err(broken(base, format!("cannot check its checksum: {e}"))),
    }
    decompress_into(base, out, deadline, progress)
        .map_err(|e| broken(base, format!("cannot decompress: {e}")))?;
    let links = &chain.links[..links.min(chain.links.len())];
    for link in links {
        if Instant::now() >= deadline {
            return Err(broken(&link.delta, "the deadline passed"));
        }
        let sha = sha256_file(&link.delta).map_err(|e| broken(&link.delta, e))?;
        if sha != link.manifest.delta_sha256 {
            return Err(broken(
                &link.delta,
                "the delta does not match the SHA-256 in its manifest",
            ));
        }
        let file = File::open(&link.delta).map_err(|e| broken(&link.delta, e))?;
        let input = zstd::stream::read::Decoder::new(file).map_err(|e| broken(&link.delta, e))?;
        out.seek(SeekFrom::Start(0))
            .map_err(|e| broken(out_path, e))?;
        apply(input, out, &link.manifest)
            .map_err(|e| broken(&link.delta, format!("cannot apply: {e}")))?;
    }
    out.sync_all().map_err(|e| broken(out_path, e))?;
    let sha = sha256_file(out_path).map_err(|e| broken(out_path, e))?;
    if let Some(last) = links.last() {
        if sha != last.manifest.sha256 {
            return Err(broken(
                &last.delta,
                "the rebuilt database does not match the SHA-256 in its manifest",
            ));
        }
    }
    Ok(sha)
}

/// Checks a whole chain as a restore to its newest link would: rebuilt into
/// a hidden temporary beside the full backup (always removed), then `mode`'s
/// check. A broken link is found by `verify_backups`, not at restore time.
pub fn verify_chain(
    chain: &Chain,
    mode: IntegrityMode,
    deadline: Instant,
    progress: &Reporter,
) -> Result<(), String> {
    if let Some(why) = &chain.broken {
        return Err(format!(
            "the chain {} is broken: {why}",
            chain.dir.display()
        ));
    }
    let temp = TempFile(hidden_sibling(
        &chain.dir,
        &format!("verify.{}.tmp", run_tag()),
    ));
    let mut out = crate::store::private::create_new(&temp.0)
        .map_err(|e| format!("cannot create {}: {e}", temp.0.display()))?;
    rebuild(
        chain,
        chain.links.len(),
        &mut out,
        &temp.0,
        deadline,
        progress,
    )
    .map_err(|e| format!("the chain is broken at {e}"))?;
    drop(out);
    check_database_file(&temp.0, mode, deadline).map_err(|why| {
        format!(
            "the chain {} rebuilds to a bad database: {why}",
            chain.dir.display()
        )
    })
}
