//! Restore drills: proof, on a schedule, that the newest backup restores
//! to the database its manifest describes.
//!
//! A checksum proves a file is the one written; `verify_backups` proves it
//! decompresses and passes `quick_check`. A drill goes as far as a real
//! restore without touching the live database: the newest verified backup
//! (local, and the newest remote one when offsite is configured) is
//! decompressed (downloaded and decrypted first) into a scratch folder
//! beside the backups, so it needs the same room on the same filesystem as
//! a restore would; `integrity_check` and `foreign_key_check` run on it;
//! its checksum, pages, schema hash, migrations and rows per table are
//! compared with the manifest written when the backup was taken; the
//! scratch folder is deleted. The live database is never opened.
//!
//! Rows that break foreign keys are counted, not a failure: a backup holds
//! what the database held (the demo's orphaned embeddings, say), and the
//! database's own violations have their alert. A check that cannot run to
//! its end, or any `integrity_check` problem, fails the drill.
//!
//! The comparison is the pure function [`differences`]; the results are
//! kept in a hidden file of the backup folder ([`record`]), so the
//! exporter's figures survive a restart and a drill run from a shell
//! reaches the daemon's `/metrics`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::manifest::{describe_file, manifest_of, Manifest};
use super::offsite::Offsite;
use super::temporaries::{run_tag, TempFile};
use super::verify::decompress;
use super::BackupSet;
use crate::config::IntegrityMode;
use crate::metrics::unix_seconds;
use crate::store::integrity::check;

/// Where the drilled backup came from: the `source` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrillSource {
    Local,
    Offsite,
}

impl DrillSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DrillSource::Local => "local",
            DrillSource::Offsite => "offsite",
        }
    }
}

/// One drill's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Drill {
    pub source: DrillSource,
    /// The backup drilled, when there was one.
    pub backup: Option<String>,
    /// From the start to the scratch copy's deletion.
    pub seconds: f64,
    /// Rows `foreign_key_check` reported on the restored copy.
    pub foreign_key_violations: Option<u64>,
    /// Why it failed.
    pub failure: Option<String>,
}

impl Drill {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// What differs between the manifest written with a backup and the
/// restored copy's own description, one sentence each; empty when they
/// agree. Tables are named.
pub fn differences(expected: &Manifest, found: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    if expected.sqlite_sha256 != found.sqlite_sha256 {
        out.push("the SQLite file's SHA-256 differs from the manifest's".to_string());
    }
    if (expected.page_size, expected.page_count) != (found.page_size, found.page_count) {
        out.push(format!(
            "{} pages of {} bytes, the manifest says {} of {}",
            found.page_count, found.page_size, expected.page_count, expected.page_size
        ));
    }
    if expected.schema_hash != found.schema_hash {
        out.push("the schema differs from the manifest's (schema hash)".to_string());
    }
    if expected.migrations_applied != found.migrations_applied {
        out.push(format!(
            "migrations applied [{}], the manifest says [{}]",
            found.migrations_applied.join(", "),
            expected.migrations_applied.join(", ")
        ));
    }
    for (table, want) in &expected.row_counts {
        match found.row_counts.get(table) {
            Some(got) if got == want => {}
            Some(got) => out.push(format!(
                "table {table}: {got} rows, the manifest says {want}"
            )),
            None => out.push(format!("table {table} is missing")),
        }
    }
    for table in found.row_counts.keys() {
        if !expected.row_counts.contains_key(table) {
            out.push(format!("table {table} is not in the manifest"));
        }
    }
    out
}

/// A folder removed with everything in it when dropped.
struct Scratch(PathBuf);

impl Scratch {
    /// `<dir>/.restore-drill.<tag>.tmp/`, 0700: on the backups' filesystem,
    /// hidden from listings, and removed after a crash by
    /// [`remove_stale_temporaries`](super::temporaries::remove_stale_temporaries).
    fn create(dir: &Path) -> std::io::Result<Scratch> {
        let path = dir.join(format!(".restore-drill.{}.tmp", run_tag()));
        crate::store::private::create_dir_all(&path)?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Drills the newest verified local backup of `set`.
pub fn drill_local(set: &BackupSet, deadline: Instant) -> Drill {
    let started = Instant::now();
    let mut backup = None;
    let result = (|| {
        let newest = set
            .list(deadline)
            .map_err(|e| format!("cannot list {}: {e}", set.dir().display()))?
            .into_iter()
            .find(|b| b.verified)
            .ok_or_else(|| "no verified local backup".to_string())?;
        let name = super::temporaries::file_name(&newest.path);
        backup = Some(name.clone());
        let manifest = read_local_manifest(&newest.path)?;
        let scratch = Scratch::create(set.dir()).map_err(|e| format!("scratch folder: {e}"))?;
        let restored = scratch.0.join(format!("{}.db", set.database()));
        decompress(&newest.path, &restored, deadline)
            .map_err(|e| format!("{name}: cannot decompress: {e}"))?;
        check_restored(&restored, &manifest, deadline).map_err(|e| format!("{name}: {e}"))
    })();
    finish(DrillSource::Local, backup, started, result)
}

/// Drills the newest remote backup: downloaded, decrypted and checked
/// against its sidecar in a scratch folder of `dir` (the backup folder),
/// then compared with the remote manifest.
pub fn drill_offsite(
    offsite: &Offsite,
    dir: &Path,
    deadline: Instant,
    progress: &crate::progress::Reporter,
) -> Drill {
    let started = Instant::now();
    let mut backup = None;
    let result = (|| {
        let newest = offsite
            .list()
            .map_err(|e| format!("cannot list the offsite store: {e}"))?
            .into_iter()
            .next()
            .ok_or_else(|| "no offsite backup".to_string())?;
        let name = newest.name.clone();
        backup = Some(name.clone());
        let manifest = offsite
            .manifest(&name)
            .map_err(|e| format!("{name}: manifest: {e}"))?;
        crate::store::private::create_dir_all(dir).map_err(|e| format!("{e}"))?;
        let scratch = Scratch::create(dir).map_err(|e| format!("scratch folder: {e}"))?;
        let fetched = offsite
            .fetch(&name, &scratch.0, progress)
            .map_err(|e| format!("{name}: {e}"))?;
        let restored = scratch.0.join(format!("{}.db", manifest.database));
        decompress(fetched.path(), &restored, deadline)
            .map_err(|e| format!("{name}: cannot decompress: {e}"))?;
        check_restored(&restored, &manifest, deadline).map_err(|e| format!("{name}: {e}"))
    })();
    finish(DrillSource::Offsite, backup, started, result)
}

fn finish(
    source: DrillSource,
    backup: Option<String>,
    started: Instant,
    result: Result<u64, String>,
) -> Drill {
    Drill {
        source,
        backup,
        seconds: started.elapsed().as_secs_f64(),
        foreign_key_violations: result.as_ref().ok().copied(),
        failure: result.err(),
    }
}

fn read_local_manifest(backup: &Path) -> Result<Manifest, String> {
    let name = super::temporaries::file_name(backup);
    let text = std::fs::read(manifest_of(backup)).map_err(|e| {
        format!("{name} has no readable manifest ({e}); backups taken from now on have one")
    })?;
    serde_json::from_slice(&text).map_err(|e| format!("{name}: its manifest is not valid: {e}"))
}

/// The checks of a restored copy: SQLite's, then the manifest's. Returns
/// the rows `foreign_key_check` reported.
fn check_restored(restored: &Path, manifest: &Manifest, deadline: Instant) -> Result<u64, String> {
    let report = check(restored, IntegrityMode::Full, deadline)
        .map_err(|e| format!("integrity_check could not run: {e}"))?;
    if !report.ok() {
        return Err(format!("integrity_check: {}", report.problems.join("; ")));
    }
    let violations = report
        .foreign_key_violations
        .ok_or_else(|| "foreign_key_check could not run".to_string())?;
    let found = describe_file(
        restored,
        &manifest.database,
        &manifest.backup,
        SystemTime::now(),
    )
    .map_err(|e| format!("cannot describe the restored copy: {e}"))?;
    let diff = differences(manifest, &found);
    if diff.is_empty() {
        Ok(violations)
    } else {
        Err(format!("differs from its manifest: {}", diff.join("; ")))
    }
}

/// The last drill of one source, as kept in the backup folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub success: bool,
    pub seconds: f64,
    /// Unix seconds when it finished.
    pub at: f64,
}

/// The file keeping `database`'s last drills, in its backup folder (hidden:
/// never a backup).
fn record_file(dir: &Path, database: &str) -> PathBuf {
    dir.join(format!(".{database}.restore-drills.json"))
}

/// The last drill of each source (none when never drilled).
pub fn recorded(dir: &Path, database: &str) -> BTreeMap<DrillSource, Recorded> {
    std::fs::read(record_file(dir, database))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

/// Keeps `drills` as the last of their sources, finished at `now`
/// (temporary name, fsync, rename); other sources' records stay.
pub fn record(
    dir: &Path,
    database: &str,
    drills: &[Drill],
    now: SystemTime,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut all = recorded(dir, database);
    for d in drills {
        all.insert(
            d.source,
            Recorded {
                success: d.ok(),
                seconds: d.seconds,
                at: unix_seconds(now),
            },
        );
    }
    let path = record_file(dir, database);
    let body = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
    let temp = TempFile(super::temporaries::hidden_sibling(
        &path,
        &format!("{}.tmp", run_tag()),
    ));
    let mut f = crate::store::private::create_new(&temp.0)?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&temp.0, &path)?;
    temp.keep();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            database: "memory".into(),
            backup: "memory-20261201T000000.000Z.db.zst".into(),
            taken_at: "2026-12-01T00:00:00.000Z".into(),
            sqlite_sha256: "aa".into(),
            page_size: 4096,
            page_count: 10,
            schema_hash: "s".into(),
            migrations_applied: vec!["001.sql".into()],
            row_counts: BTreeMap::from([("patterns".into(), 100), ("notes".into(), 3)]),
        }
    }

    #[test]
    fn an_identical_description_has_no_differences() {
        assert!(differences(&manifest(), &manifest()).is_empty());
    }

    #[test]
    fn each_difference_is_named_and_tables_by_name() {
        let mut found = manifest();
        found.row_counts.insert("patterns".into(), 90);
        found.row_counts.remove("notes");
        found.row_counts.insert("extra".into(), 1);
        found.migrations_applied.clear();
        found.schema_hash = "t".into();
        let diff = differences(&manifest(), &found);
        assert!(diff.contains(&"table patterns: 90 rows, the manifest says 100".to_string()));
        assert!(diff.contains(&"table notes is missing".to_string()));
        assert!(diff.contains(&"table extra is not in the manifest".to_string()));
        assert!(diff.iter().any(|d| d.contains("schema")), "{diff:?}");
        assert!(diff.iter().any(|d| d.contains("migrations")), "{diff:?}");
        assert_eq!(diff.len(), 5, "{diff:?}");
    }

    #[test]
    fn records_keep_the_other_sources_last_drill() {
        let dir = tempfile::tempdir().expect("tempdir");
        let drill = |source, failure: Option<&str>| Drill {
            source,
            backup: None,
            seconds: 1.5,
            foreign_key_violations: None,
            failure: failure.map(str::to_string),
        };
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        record(dir.path(), "memory", &[drill(DrillSource::Local, None)], t).expect("record");
        let later = t + std::time::Duration::from_secs(10);
        record(
            dir.path(),
            "memory",
            &[drill(DrillSource::Offsite, Some("no"))],
            later,
        )
        .expect("record");
        let all = recorded(dir.path(), "memory");
        assert_eq!(all[&DrillSource::Local].at, 1000.0);
        assert!(all[&DrillSource::Local].success);
        assert_eq!(all[&DrillSource::Offsite].at, 1010.0);
        assert!(!all[&DrillSource::Offsite].success);
        assert!(recorded(dir.path(), "other").is_empty());
    }
}
