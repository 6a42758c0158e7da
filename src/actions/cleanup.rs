//! `cleanup_files`: the runbooks' `find DIR -name PATTERN -mtime +N -delete`,
//! confined to the configured folders.
//!
//! Only regular files directly in each folder are considered; symbolic links
//! are never followed or removed, so nothing outside the folder is touched.
//! That holds for the folder itself too: it is opened once with
//! `O_DIRECTORY | O_NOFOLLOW` (a folder replaced by a link is refused) and
//! every listing, `stat` and `unlink` is relative to that descriptor, so a
//! folder swapped between listing and deleting cannot redirect the deletes.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{Action, ActionContext, ActionError, Outcome};
use crate::config::CleanupConfig;

pub struct CleanupFiles;

/// A configured folder, opened without following a link.
pub struct Folder(OwnedFd);

impl Folder {
    /// Opens `rule.dir`; a symbolic link (or anything not a folder) is refused.
    pub fn open(rule: &CleanupConfig) -> Result<Folder, ActionError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::open(&rule.dir, flags, Mode::empty()) {
            Ok(fd) => Ok(Folder(fd)),
            // Linux answers ENOTDIR for a link with O_DIRECTORY, ELOOP without;
            // the lstat only words the refusal, it decides nothing.
            Err(Errno::LOOP | Errno::NOTDIR) => {
                let link =
                    std::fs::symlink_metadata(&rule.dir).is_ok_and(|m| m.file_type().is_symlink());
                let what = if link {
                    "is a symbolic link; cleanup_files never follows links"
                } else {
                    "is not a folder"
                };
                Err(ActionError::Refused(format!(
                    "{} {what}",
                    rule.dir.display()
                )))
            }
            Err(e) => Err(ActionError::Io(std::io::Error::from(e))),
        }
    }

    /// The regular files the rule selects, by name and age, with their sizes.
    pub fn select(
        &self,
        rule: &CleanupConfig,
        now: SystemTime,
    ) -> std::io::Result<Vec<(OsString, u64)>> {
        let pattern =
            glob::Pattern::new(&rule.pattern).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut out = Vec::new();
        for entry in Dir::read_from(&self.0)? {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            let Some(text) = name.to_str() else { continue };
            if text == "." || text == ".." || !pattern.matches(text) {
                continue;
            }
            // SYMLINK_NOFOLLOW: a link is a link, never what it points to.
            let st = rustix::fs::statat(&self.0, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                continue;
            }
            let modified = u64::try_from(st.st_mtime)
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
            if age > rule.older_than {
                out.push((name.to_os_string(), u64::try_from(st.st_size).unwrap_or(0)));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes `name` from this folder (a link by that name is removed, not followed).
    pub fn remove(&self, name: &OsStr) -> std::io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.0, name, AtFlags::empty())?)
    }
}

impl Action for CleanupFiles {
    fn mutates(&self) -> bool {
        false
    }

    fn writes_files(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        if ctx.database.cleanup.is_empty() {
            return Err(ActionError::NotConfigured(
                "no [[database.cleanup]] folders are configured".into(),
            ));
        }
        let (mut files, mut bytes) = (0u64, 0u64);
        // Every folder is opened before anything is removed: one refused folder
        // refuses the whole action.
        let folders = ctx
            .database
            .cleanup
            .iter()
            .map(|rule| Folder::open(rule).map(|f| (rule, f)))
            .collect::<Result<Vec<_>, _>>()?;
        for (rule, folder) in &folders {
            for (name, size) in folder.select(rule, ctx.now)? {
                if !ctx.dry_run {
                    folder.remove(&name)?;
                }
                files += 1;
                bytes += size;
            }
        }
        let verb = if ctx.dry_run {
            "would remove"
        } else {
            "removed"
        };
        Ok(
            Outcome::new(format!("{verb} {files} files ({bytes} bytes)"))
                .figure("files_removed", files as f64)
                .figure("bytes_freed", bytes as f64),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_matching_regular_files_only_and_never_through_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let old = SystemTime::now() - Duration::from_secs(40 * 86400);
        for name in ["a.log", "b.log", "keep.txt"] {
            let f = std::fs::File::create(dir.path().join(name)).expect("create");
            f.set_modified(old).expect("mtime");
        }
        std::fs::write(dir.path().join("new.log"), "x").expect("new");
        let target = outside.path().join("victim.log");
        std::fs::write(&target, "x").expect("victim");
        std::fs::File::options()
            .write(true)
            .open(&target)
            .expect("open")
            .set_modified(old)
            .expect("mtime");
        std::os::unix::fs::symlink(&target, dir.path().join("link.log")).expect("symlink");
        std::fs::create_dir(dir.path().join("sub.log")).expect("dir");
        let rule = CleanupConfig {
            dir: dir.path().to_path_buf(),
            pattern: "*.log".into(),
            older_than: Duration::from_secs(30 * 86400),
        };
        let names: Vec<String> = Folder::open(&rule)
            .expect("open")
            .select(&rule, SystemTime::now())
            .expect("select")
            .iter()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.log", "b.log"]);
        assert!(target.exists());
    }
}
