//! One incremental snapshot of a database: the pages that changed since the
//! chain's newest state, as the chain's next link. The caller holds the
//! database's lock (as for a full backup); the database itself is only read,
//! inside one read transaction, so writers never wait for it (WAL mode) and
//! nothing is checkpointed.

use std::path::Path;
use std::time::{Instant, SystemTime};

use super::format::{delta_name, manifest_name, stamp, Manifest};
use super::pages::{scan, write_replacing, PageHashes, ScanError, HASHES_NAME};
use super::plan::{next, Next};
use super::rebuild::{rebuild, BrokenLink};
use super::{chains, Chain, Checked, CHECKED_NAME};
use crate::backups::listing::{database_backups_cached, ChecksumCache};
use crate::backups::temporaries::{run_tag, TempFile};
use crate::config::{BackupConfig, Compression, DatabaseConfig};
use crate::store::private;
use crate::store::sqlite::{map_for_full_pass, open_monitor};

/// What one snapshot did.
#[derive(Debug, Clone, PartialEq)]
pub enum Taken {
    /// A new link.
    Delta {
        sequence: u64,
        changed_pages: u32,
        bytes: u64,
    },
    /// Nothing changed: the recovery point moved on without a delta.
    Unchanged,
    /// No chain can take a delta: a full backup must start the next one.
    NeedsFullBackup(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Scan(#[from] ScanError),
    #[error("the chain is broken at {0}")]
    Broken(#[from] BrokenLink),
}

/// Takes one snapshot of `db` into the newest chain of its backup folder
/// (`now` decides whether that chain is too old to continue), starting the
/// chain on its full backup if needed. `cache` keeps
/// the backups' checksums across calls.
pub fn take_snapshot(
    db: &DatabaseConfig,
    cfg: &BackupConfig,
    now: SystemTime,
    deadline: Instant,
    cache: &mut ChecksumCache,
) -> Result<Taken, SnapshotError> {
    let backups = match database_backups_cached(&cfg.dir, &db.name, deadline, cache) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    // Only the newest verified backup's chain can take the next link: the
    // older chains' manifests are not read every interval.
    let newest = backups
        .into_iter()
        .filter(|b| b.verified)
        .max_by_key(|b| b.taken);
    let chains = chains(newest.into_iter().collect())?;
    let chain = match next(&chains, now, cfg.full_interval) {
        Next::FullBackup(why) => return Ok(Taken::NeedsFullBackup(why)),
        Next::Delta(i) => &chains[i],
    };
    private::create_dir_all(&chain.dir)?;
    remove_temporaries(&chain.dir)?;
    let previous = newest_hashes(chain, deadline)?;
    let sequence = chain.links.len() as u64 + 1;
    let tag = run_tag();
    let delta_temp = TempFile(
        chain
            .dir
            .join(format!(".{}.{tag}.tmp", delta_name(sequence))),
    );
    let file = private::create_new(&delta_temp.0)?;
    let level = match cfg.compression {
        Compression::Zstd => cfg.level.clamp(1, 22),
        Compression::Gzip => 3,
    };
    let mut encoder = zstd::stream::write::Encoder::new(std::io::BufWriter::new(file), level)?;
    encoder.include_checksum(true)?;

    let conn = open_monitor(&db.path, deadline)?;
    map_for_full_pass(&conn)?;
    let (found, encoder) = scan(&conn, &previous, encoder, deadline)?;
    drop(conn);
    // The snapshot's moment, rounded up to the millisecond of the stamp: a
    // state is never labelled earlier than a commit it holds.
    let taken_at = ceil_millis(found.pinned_at);
    if !found.differs {
        drop(encoder);
        drop(delta_temp);
        let checked = Checked {
            sequence: sequence - 1,
            checked_at: stamp(taken_at),
        };
        write_replacing(
            &chain.dir.join(CHECKED_NAME),
            &serde_json::to_vec(&checked).map_err(std::io::Error::other)?,
        )?;
        return Ok(Taken::Unchanged);
    }
    let file = encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    let delta_sha256 = crate::backups::sidecar::sha256_file(&delta_temp.0)?;
    let bytes = std::fs::metadata(&delta_temp.0)?.len();
    let manifest = Manifest {
        chain: file_name(&chain.base.path),
        sequence,
        taken_at: stamp(taken_at),
        page_size: found.hashes.page_size,
        page_count: u32::try_from(found.hashes.hashes.len()).unwrap_or(u32::MAX),
        changed_pages: found.changed,
        delta_bytes: bytes,
        delta_sha256,
        sha256: found.sha256,
    };
    let delta_path = chain.dir.join(delta_name(sequence));
    std::fs::rename(&delta_temp.0, &delta_path)?;
    delta_temp.keep();
    // The manifest makes the link: until it is in place the delta is not one.
    let body = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    if let Err(e) = write_replacing(&chain.dir.join(manifest_name(sequence)), &body) {
        let _ = std::fs::remove_file(&delta_path);
        return Err(e.into());
    }
    let hashes = PageHashes {
        sequence,
        ..found.hashes
    };
    hashes.save(&chain.dir.join(HASHES_NAME))?;
    Ok(Taken::Delta {
        sequence,
        changed_pages: manifest.changed_pages,
        bytes,
    })
}

/// The page hashes of the chain's newest state: the hash file when it is
/// whole and current, otherwise rebuilt from the chain (a crash between a
/// link and its hash file, or a chain just started on its full backup).
fn newest_hashes(chain: &Chain, deadline: Instant) -> Result<PageHashes, SnapshotError> {
    let path = chain.dir.join(HASHES_NAME);
    let links = chain.links.len();
    if let Some(h) = PageHashes::load(&path).filter(|h| h.sequence == links as u64) {
        return Ok(h);
    }
    let temp = TempFile(chain.dir.join(format!(".state.{}.tmp", run_tag())));
    let mut out = private::create_new(&temp.0)?;
    rebuild(
        chain,
        links,
        &mut out,
        &temp.0,
        deadline,
        &crate::progress::Reporter::none(),
    )?;
    drop(out);
    let (hashes, _) = PageHashes::of_file(&temp.0, links as u64)?;
    hashes.save(&path)?;
    tracing::info!(chain = %chain.dir.display(), links, "page hashes rebuilt from the chain");
    Ok(hashes)
}

/// Hidden temporaries a killed snapshot left, and a delta renamed without
/// its manifest: never a link. Only this run (under the lock) writes here.
fn remove_temporaries(dir: &Path) -> std::io::Result<()> {
    let mut removed = false;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let orphan_delta = name
            .strip_suffix(".delta.zst")
            .is_some_and(|seq| !dir.join(format!("{seq}.json")).exists());
        if (name.starts_with('.') && name.ends_with(".tmp")) || orphan_delta {
            std::fs::remove_file(entry.path())?;
            removed = true;
        }
    }
    if removed {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn ceil_millis(t: SystemTime) -> SystemTime {
    let below = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 1_000_000);
    match below {
        0 => t,
        n => t + std::time::Duration::from_nanos(u64::from(1_000_000 - n)),
    }
}

fn file_name(path: &Path) -> String {
    crate::backups::temporaries::file_name(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_snapshot_is_labelled_at_or_after_its_moment_to_the_millisecond() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
        assert_eq!(ceil_millis(at), at);
        assert_eq!(
            ceil_millis(at + Duration::from_nanos(1)),
            at + Duration::from_millis(1)
        );
        assert_eq!(
            stamp(ceil_millis(at + Duration::from_micros(999))),
            stamp(at + Duration::from_millis(1))
        );
    }
}
