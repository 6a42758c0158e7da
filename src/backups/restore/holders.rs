//! Who has a database open: a restore renames the file away, and the writes
//! of a process that still holds it would go to a file that no longer has
//! its name.

use std::path::{Path, PathBuf};

use super::RestoreError;

/// A process that has the database open.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

pub(super) fn holders_text(holders: &[Holder]) -> String {
    let parts: Vec<String> = holders
        .iter()
        .map(|h| format!("{} (pid {})", h.command, h.pid))
        .collect();
    parts.join(", ")
}

/// Refuses while another process has `db` (or its `-wal`) open.
pub(super) fn refuse_if_open(db: &Path, force: bool) -> Result<(), RestoreError> {
    let holders = holders_of(db);
    if holders.is_empty() || force {
        if !holders.is_empty() {
            tracing::warn!(database = %db.display(), holders = %holders_text(&holders), "restoring anyway (forced)");
        }
        return Ok(());
    }
    Err(RestoreError::InUse {
        path: db.to_path_buf(),
        holders,
    })
}

/// The name `/proc/*/fd` shows for `p`: every symlink resolved, the file's
/// own included (a process holds the target, not the link).
fn canonical(p: &Path) -> Option<PathBuf> {
    if let Ok(real) = p.canonicalize() {
        return Some(real);
    }
    let parent = p.parent()?.canonicalize().ok()?;
    Some(parent.join(p.file_name()?))
}

/// Processes other than this one with a descriptor on `db` or its `-wal`,
/// from `/proc/*/fd` (only processes we may inspect are seen).
pub fn holders_of(db: &Path) -> Vec<Holder> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let targets: Vec<PathBuf> = [db.to_path_buf(), PathBuf::from(wal)]
        .iter()
        .filter_map(|p| canonical(p))
        .collect();
    let me = std::process::id();
    let mut holders = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return holders;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|link| targets.contains(&link));
        if holds {
            let command = std::fs::read_to_string(entry.path().join("comm"))
                .map_or_else(|_| "?".into(), |c| c.trim().to_string());
            holders.push(Holder { pid, command });
        }
    }
    holders
}
