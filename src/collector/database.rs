//! File and page facts of one database: is it up, how big, how fragmented.
//!
//! Cheap enough to run every few seconds: two `stat`s and four PRAGMAs. A
//! database that cannot be opened or read is reported as down with its reason
//! logged once per change, and the collector itself still succeeds. A file
//! whose stamp is the one of the last pass that read it is not opened again
//! (see [`super::last_pass`]): nothing here depends on the clock.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use super::last_pass::LastPass;
use super::{CollectError, Collector};
use crate::metrics::MetricSet;
use crate::store::sqlite::open_monitor;
use crate::store::stamp::FileStamp;

pub struct DatabaseCollector {
    name: String,
    path: PathBuf,
    last_state: Mutex<Option<String>>,
    /// The last pass that found the database up.
    last: LastPass,
}

impl DatabaseCollector {
    pub fn new(name: &str, path: &Path) -> Self {
        Self {
            name: name.to_string(),
            path: path.to_path_buf(),
            last_state: Mutex::new(None),
            last: LastPass::default(),
        }
    }

    /// Logs the database's state when it changes, not on every collection.
    fn note_state(&self, state: String) {
        let mut last = self.last_state.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() != Some(state.as_str()) {
            if state == "up" {
                tracing::info!(database = %self.name, path = %self.path.display(), "database is up");
            } else {
                tracing::warn!(database = %self.name, path = %self.path.display(), reason = %state, "database is down");
            }
            *last = Some(state);
        }
    }
}

struct Pages {
    page_size: i64,
    pages: i64,
    freelist: i64,
    wal_mode: bool,
}

fn read_pages(path: &Path, deadline: Instant) -> rusqlite::Result<Pages> {
    let conn = open_monitor(path, deadline)?;
    // Reading the schema proves the file is a database, not only a file.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    Ok(Pages {
        page_size: pragma("page_size")?,
        pages: pragma("page_count")?,
        freelist: pragma("freelist_count")?,
        wal_mode: journal.eq_ignore_ascii_case("wal"),
    })
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

impl Collector for DatabaseCollector {
    fn name(&self) -> &'static str {
        "database"
    }

    fn collect(&self, deadline: Instant) -> Result<MetricSet, CollectError> {
        let stamp = FileStamp::read(&self.path).ok();
        if let Some(set) = stamp.as_ref().and_then(|s| self.last.reuse(s, 0)) {
            return Ok(set);
        }
        self.last.forget();
        let (set, up) = self.read(deadline);
        if let (Some(stamp), true) = (stamp, up) {
            self.last.keep(stamp, None, &set);
        }
        Ok(set)
    }
}

impl DatabaseCollector {
    /// One pass: the figures, and whether the database was up.
    fn read(&self, deadline: Instant) -> (MetricSet, bool) {
        let mut set = MetricSet::new();
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let size = file_size(&self.path);
        let state = match size {
            None => Err("file does not exist or cannot be read".to_string()),
            Some(_) => read_pages(&self.path, deadline).map_err(|e| e.to_string()),
        };
        let up = state.is_ok();
        set.gauge(
            "caretaker_database_up",
            "1 if the database could be opened and read at the last collection",
            vec![],
            if up { 1.0 } else { 0.0 },
        );
        if let Some(size) = size {
            set.gauge(
                "caretaker_database_size_bytes",
                "Size of the database file",
                vec![],
                size as f64,
            );
        }
        set.gauge(
            "caretaker_database_wal_size_bytes",
            "Size of the write-ahead log file (0 when there is none)",
            vec![],
            file_size(Path::new(&wal)).unwrap_or(0) as f64,
        );
        match state {
            Ok(p) => {
                set.gauge(
                    "caretaker_database_page_size_bytes",
                    "PRAGMA page_size",
                    vec![],
                    p.page_size as f64,
                );
                set.gauge(
                    "caretaker_database_pages",
                    "PRAGMA page_count",
                    vec![],
                    p.pages as f64,
                );
                set.gauge(
                    "caretaker_database_freelist_pages",
                    "PRAGMA freelist_count: unused pages a VACUUM would release",
                    vec![],
                    p.freelist as f64,
                );
                set.gauge(
                    "caretaker_database_wal_mode",
                    "1 if the database uses write-ahead logging",
                    vec![],
                    if p.wal_mode { 1.0 } else { 0.0 },
                );
                self.note_state("up".into());
            }
            Err(reason) => self.note_state(reason),
        }
        (set, up)
    }
}
