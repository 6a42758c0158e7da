//! The hidden files a backup run works in, and their cleanup after a crash.
//!
//! Every intermediate file (the raw copy, the compressed file before its
//! rename, a sidecar being written, a verification's decompressed copy, a
//! restore drill's scratch folder) has a
//! hidden name `.<...>.<pid>-<n>.tmp` beside the backups: the exporter ignores
//! it, the run that made it removes it on any error, and
//! [`remove_stale_temporaries`] removes what a crash left behind, never a live
//! run's.

use std::path::{Path, PathBuf};

/// A file removed when dropped.
pub(crate) struct TempFile(pub PathBuf);

impl TempFile {
    /// Keeps the file: it is no longer temporary.
    pub(crate) fn keep(mut self) {
        self.0 = PathBuf::new();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// `<pid>-<n>`: unique to one run in this process, and naming the process
/// so that a later start can tell a live run's temporaries from a crash's.
pub(crate) fn run_tag() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// The pid in a temporary's name `.<...>.<pid>-<n>.tmp`; `None` for names
/// without one (older versions), which belong to no live run.
pub(crate) fn tag_pid(name: &str) -> Option<u32> {
    let (_, tag) = name.strip_suffix(".tmp")?.rsplit_once('.')?;
    let (pid, n) = tag.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// `<dir>/.<name>.<suffix>`: a name the exporter ignores and
/// `remove_stale_temporaries` cleans up when it ends in `.tmp`.
pub(crate) fn hidden_sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = file_name(path);
    path.with_file_name(format!(".{name}.{suffix}"))
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Deletes the hidden `.*.tmp` files (and drills' scratch folders) a crash left in a backup folder; a
/// missing folder has none. Called by the daemon at startup: temporaries
/// of a live process (a `caretaker run backup` beside it, named by its pid)
/// are kept; this process's own pid counts as dead, as it has not started
/// a backup yet and a container may give every start the same pid.
pub fn remove_stale_temporaries(dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = file_name(&entry.path());
        let live = tag_pid(&name).is_some_and(|pid| {
            pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
        });
        if !(name.starts_with('.') && name.ends_with(".tmp")) || live {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_file() {
            std::fs::remove_file(entry.path())?;
        } else if kind.is_dir() && tag_pid(&name).is_some() {
            // A restore drill's scratch folder (only caretaker's own names).
            std::fs::remove_dir_all(entry.path())?;
        } else {
            continue;
        }
        tracing::info!(file = %entry.path().display(), "removed a stale temporary file");
        removed += 1;
    }
    Ok(removed)
}
