//! `cleanup_files`: the runbooks' `find DIR -name PATTERN -mtime +N -delete`,
//! confined to the configured folders.
//!
//! Only regular files directly in each folder are considered; symbolic links
//! are never followed or removed, so nothing outside the folder is touched.

use std::time::{Duration, SystemTime};

use super::{Action, ActionContext, ActionError, Outcome};
use crate::config::CleanupConfig;

pub struct CleanupFiles;

/// The files of one folder that the rule selects, by name and age.
pub fn select(
    rule: &CleanupConfig,
    now: SystemTime,
) -> std::io::Result<Vec<(std::path::PathBuf, u64)>> {
    let pattern =
        glob::Pattern::new(&rule.pattern).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&rule.dir)? {
        let entry = entry?;
        // symlink_metadata: a link is a link, never what it points to.
        let meta = std::fs::symlink_metadata(entry.path())?;
        if !meta.file_type().is_file() {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let age = now
            .duration_since(meta.modified()?)
            .unwrap_or(Duration::ZERO);
        if pattern.matches(name) && age > rule.older_than {
            out.push((entry.path(), meta.len()));
        }
    }
    out.sort();
    Ok(out)
}

impl Action for CleanupFiles {
    fn name(&self) -> &'static str {
        "cleanup_files"
    }

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
        for rule in &ctx.database.cleanup {
            for (path, size) in select(rule, ctx.now)? {
                if !ctx.dry_run {
                    std::fs::remove_file(&path)?;
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
        let names: Vec<String> = select(&rule, SystemTime::now())
            .expect("select")
            .iter()
            .map(|(p, _)| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.log", "b.log"]);
        assert!(target.exists());
    }
}
