//! Watching the folders a `[[discover]]` glob can match in, so that a database
//! created or removed there is rescanned for within a moment rather than at
//! the next `discover_interval`.
//!
//! Only the folders a match could lie in are watched, each on its own: for
//! `agents/*/.swarm/memory.db` that is `agents`, every `agents/*` and every
//! `agents/*/.swarm`, never the rest of a project's tree (an agent's
//! workspace can hold a `node_modules` of a hundred thousand folders, and
//! inotify takes one watch per folder). Only below a `**` is a folder watched
//! recursively. A folder of the glob that does not exist yet is covered by
//! watching its nearest existing ancestor. New project folders need watches of
//! their own, so the set is recomputed on every pass ([`FolderWatch::update`]).
//!
//! The callback drops events that cannot change what the glob matches: file
//! contents changing (every write of the database and its WAL), and names
//! that neither the glob nor one of its folder prefixes could match (`-wal`,
//! `-journal`, an editor's temporaries).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use regex::Regex;
use tokio::sync::mpsc;

use crate::config::discover::{pattern, DiscoverSpec};

fn is_wild(component: &str) -> bool {
    component.contains(['*', '?', '['])
}

/// The folders to watch for `glob` (absolute) as the filesystem is now.
pub fn folders(glob: &str) -> BTreeMap<PathBuf, RecursiveMode> {
    let parts: Vec<&str> = glob.split('/').collect();
    let last = parts.len().saturating_sub(1);
    let first_wild = parts
        .iter()
        .position(|c| is_wild(c))
        .unwrap_or(last)
        .min(last);
    let join = |parts: &[&str]| match parts.join("/") {
        s if s.is_empty() => PathBuf::from("/"),
        s => PathBuf::from(s),
    };
    let fixed = join(&parts[..first_wild]);
    let mut out = BTreeMap::new();
    let mut nearest = fixed.as_path();
    while !nearest.is_dir() {
        match nearest.parent() {
            Some(parent) => nearest = parent,
            None => return out,
        }
    }
    out.insert(nearest.to_path_buf(), RecursiveMode::NonRecursive);
    if nearest != fixed {
        return out;
    }
    let existing = |parts: &[&str]| -> Vec<PathBuf> {
        if parts.len() <= first_wild {
            return vec![fixed.clone()];
        }
        glob::glob(&parts.join("/"))
            .map(|paths| {
                paths
                    .filter_map(Result::ok)
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    };
    for k in first_wild + 1..=last {
        if parts[k - 1].contains("**") {
            for dir in existing(&parts[..k - 1]) {
                out.insert(dir, RecursiveMode::Recursive);
            }
            break;
        }
        for dir in existing(&parts[..k]) {
            out.entry(dir).or_insert(RecursiveMode::NonRecursive);
        }
    }
    out
}

/// The glob and each of its folder prefixes as patterns: an event matters
/// when its path matches one of them.
fn prefixes(glob: &str) -> Vec<Regex> {
    let parts: Vec<&str> = glob.split('/').collect();
    (2..=parts.len())
        .filter_map(|k| pattern(&parts[..k].join("/")).ok())
        .collect()
}

/// Whether `kind` can change which files exist under a name.
fn names_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any | EventKind::Other => true,
        EventKind::Modify(ModifyKind::Name(_) | ModifyKind::Any) => true,
        EventKind::Modify(_) | EventKind::Access(_) => false,
    }
}

/// The watches of every `[[discover]]` folder; events that matter send on
/// the channel given to [`FolderWatch::new`].
pub struct FolderWatch {
    watcher: RecommendedWatcher,
    watched: BTreeMap<PathBuf, RecursiveMode>,
    /// The patterns the callback matches event paths against.
    relevant: Arc<RwLock<Vec<Regex>>>,
    /// Whether a failed watch was logged as a warning already.
    warned: bool,
}

impl FolderWatch {
    pub fn new(tx: mpsc::Sender<()>) -> notify::Result<Self> {
        let relevant: Arc<RwLock<Vec<Regex>>> = Arc::default();
        let patterns = relevant.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let matters = match res {
                // A lost event (queue overflow) or a watch error: rescan.
                Err(_) => true,
                Ok(event) if event.need_rescan() => true,
                Ok(event) => {
                    let patterns = patterns.read().unwrap_or_else(|e| e.into_inner());
                    names_change(&event.kind)
                        && event.paths.iter().any(|p| {
                            p.to_str()
                                .is_some_and(|p| patterns.iter().any(|re| re.is_match(p)))
                        })
                }
            };
            if matters {
                let _ = tx.try_send(());
            }
        })?;
        Ok(Self {
            watcher,
            watched: BTreeMap::new(),
            relevant,
            warned: false,
        })
    }

    /// Watches the folders of `specs` and no others. Repeats until no folder
    /// is added: a folder created before its parent's watch was in place sent
    /// no event, but shows in the next computation. Returns the folders watched.
    pub fn update(&mut self, specs: &[DiscoverSpec]) -> usize {
        *self.relevant.write().unwrap_or_else(|e| e.into_inner()) =
            specs.iter().flat_map(|s| prefixes(&s.glob)).collect();
        let mut tried = BTreeSet::new();
        loop {
            let mut wanted: BTreeMap<PathBuf, RecursiveMode> = BTreeMap::new();
            for spec in specs {
                for (dir, mode) in folders(&spec.glob) {
                    let slot = wanted.entry(dir).or_insert(mode);
                    if mode == RecursiveMode::Recursive {
                        *slot = mode;
                    }
                }
            }
            let stale: Vec<PathBuf> = (self.watched.iter())
                .filter(|(dir, mode)| wanted.get(*dir) != Some(*mode))
                .map(|(dir, _)| dir.clone())
                .collect();
            for dir in stale {
                let _ = self.watcher.unwatch(&dir);
                self.watched.remove(&dir);
            }
            let mut added = false;
            for (dir, mode) in wanted {
                if self.watched.contains_key(&dir) || !tried.insert(dir.clone()) {
                    continue;
                }
                match self.watcher.watch(&dir, mode) {
                    Ok(()) => {
                        self.watched.insert(dir, mode);
                        added = true;
                    }
                    Err(e) => self.failed(&dir, &e),
                }
            }
            if !added {
                return self.watched.len();
            }
        }
    }

    fn failed(&mut self, dir: &Path, e: &notify::Error) {
        if self.warned {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot watch a discover folder");
        } else {
            self.warned = true;
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch a discover folder (fs.inotify.max_user_watches?); its databases are found at the next discover_interval");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkdir(p: &Path) {
        std::fs::create_dir_all(p).expect("mkdir");
    }

    #[test]
    fn only_the_folders_a_match_can_lie_in_are_watched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        mkdir(&root.join("agents/a/.swarm"));
        mkdir(&root.join("agents/b/src/deep"));
        let glob = format!("{}/agents/*/.swarm/memory.db", root.display());
        let got: Vec<PathBuf> = folders(&glob).into_keys().collect();
        let want: Vec<PathBuf> = ["agents", "agents/a", "agents/a/.swarm", "agents/b"]
            .iter()
            .map(|p| root.join(p))
            .collect();
        assert_eq!(got, want, "never agents/b/src");
    }

    #[test]
    fn a_missing_folder_is_covered_by_its_nearest_ancestor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let glob = format!("{}/not/yet/*/memory.db", dir.path().display());
        let got = folders(&glob);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![(dir.path().to_path_buf(), RecursiveMode::NonRecursive)]
        );
    }

    #[test]
    fn below_a_double_star_the_watch_is_recursive() {
        let dir = tempfile::tempdir().expect("tempdir");
        mkdir(&dir.path().join("projects/x/y"));
        let glob = format!("{}/projects/**/memory.db", dir.path().display());
        let got = folders(&glob);
        assert_eq!(
            got.get(&dir.path().join("projects")),
            Some(&RecursiveMode::Recursive)
        );
        assert!(!got.contains_key(&dir.path().join("projects/x")));
    }

    #[test]
    fn only_names_the_glob_or_its_folders_could_match_matter() {
        let res = prefixes("/srv/agents/*/.swarm/memory.db");
        let matters = |p: &str| res.iter().any(|re| re.is_match(p));
        assert!(matters("/srv/agents"));
        assert!(matters("/srv/agents/new"));
        assert!(matters("/srv/agents/new/.swarm"));
        assert!(matters("/srv/agents/new/.swarm/memory.db"));
        assert!(!matters("/srv/agents/new/.swarm/memory.db-wal"));
        assert!(!matters("/srv/agents/new/src"));
        assert!(!matters("/srv/other"));
        assert!(!names_change(&EventKind::Modify(ModifyKind::Data(
            notify::event::DataChange::Any
        ))));
    }
}
