//! `restore --at`: the state of a chain at a moment, rebuilt into the
//! restore's temporary file and checked there like a full backup. Unlike a
//! full backup that fails its checksum, a broken link is never passed over
//! for an older state: the restore refuses and names the link, so nobody
//! gets an older database than asked for without knowing.

use std::ffi::OsStr;
use std::fs::File;
use std::path::PathBuf;
use std::time::SystemTime;

use super::place::{Folder, Identity};
use super::{far_future, io, list_backups, RestoreError};
use crate::backups::chain::plan::point_at;
use crate::backups::chain::rebuild::rebuild;
use crate::backups::chain::{chains, format::stamp};
use crate::backups::temporaries::file_name;
use crate::backups::verify::check_database_file;
use crate::config::{DatabaseConfig, IntegrityMode};
use crate::progress::Reporter;

/// Rebuilds `db`'s newest state taken at or before `at` into a new `temp`;
/// returns the last file applied, when that state was taken, and the file.
pub(super) fn prepare_point(
    db: &DatabaseConfig,
    at: SystemTime,
    folder: &Folder,
    temp: &OsStr,
    progress: &Reporter,
) -> Result<(PathBuf, SystemTime, File), RestoreError> {
    let all = list_backups(db)?;
    let dir = db
        .backup
        .as_ref()
        .map(|b| b.dir.clone())
        .unwrap_or_default();
    let chains = chains(all).map_err(io("listing", &dir))?;
    let point = point_at(&chains, at)
        .map_err(RestoreError::Chain)?
        .ok_or_else(|| RestoreError::NoPoint {
            database: db.name.clone(),
            at: stamp(at),
        })?;
    let chain = &chains[point.chain];
    let path = folder.join(temp);
    let mut file = folder.create_new(temp).map_err(io("creating", &path))?;
    rebuild(chain, point.links, &mut file, &path, far_future(), progress)
        .map_err(|e| RestoreError::Chain(format!("the chain is broken at {e}")))?;
    let ours = Identity::of(&file.metadata().map_err(io("reading", &path))?);
    let still_ours = || match folder.holds(temp, ours) {
        Ok(true) => Ok(()),
        Ok(false) => Err(RestoreError::Replaced(path.clone())),
        Err(e) => Err(io("reading", &path)(e)),
    };
    still_ours()?;
    let last = point
        .links
        .checked_sub(1)
        .map_or_else(|| chain.base.path.clone(), |n| chain.links[n].delta.clone());
    let shown = progress.stage(
        &format!("checking the state up to {}", file_name(&last)),
        None,
    );
    let checked = check_database_file(&path, IntegrityMode::Full, far_future());
    drop(shown);
    still_ours()?;
    checked.map_err(|why| {
        RestoreError::Chain(format!(
            "the database rebuilt up to {} fails its check: {why}",
            last.display()
        ))
    })?;
    Ok((last, point.taken, file))
}
