//! Crash trials: `caretaker run ACTION` is killed with SIGKILL at a random
//! moment while the application keeps writing, and everything caretaker
//! promises must still hold afterwards: the database is intact, no row is
//! lost (it is still in the database or in a complete archive), no half
//! written backup counts as one, startup cleanup removes the temporaries, and
//! the state database shows the killed job as `interrupted`.
//!
//! `CARETAKER_CRASH_TRIALS` chooses the trials per action (5 by default;
//! `scripts/reliability.sh --long` runs 50). Each action prints one
//! `RELIABILITY crash ...` line with its figures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use caretaker::actions::archive;
use caretaker::actions::archive::{list_archives, read_archive, ArchiveValue};
use caretaker::backups::listing::{database_backups, list_folder, ChecksumCache};
use caretaker::backups::temporaries;
use caretaker::backups::verify::verify_backup;
use caretaker::config::{Config, IntegrityMode};
use caretaker::demo::generate::{generate, GenerateOptions};
use caretaker::responder::state::{JobFilter, StateStore};
use rusqlite::Connection;

/// Key expression of every table an action may delete from.
const KEYED: [(&str, &str); 5] = [
    ("patterns", "id"),
    ("pattern_embeddings", "pattern_id"),
    ("task_trajectories", "id"),
    ("verification_history", "id"),
    ("memory_entries", "namespace || char(1) || key"),
];

const CONFIG: &str = r#"
[[database]]
name = "memory"
path = "memory.db"
[database.backup]
dir = "backups"
[database.prune]
enabled = true
[database.vacuum]
enabled = true

[responder]
state_file = "state.db"
"#;

pub fn trials() -> usize {
    std::env::var("CARETAKER_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// A demo database of a few thousand patterns in WAL mode, checkpointed so
/// that copying the main file copies the database.
fn base_database(dir: &Path) -> PathBuf {
    let path = dir.join("base.db");
    let opts = GenerateOptions {
        patterns: 3_000,
        ..GenerateOptions::default()
    };
    generate(&path, &opts).expect("generate");
    let conn = Connection::open(&path).expect("open");
    conn.pragma_update(None, "journal_mode", "wal")
        .expect("wal");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    drop(conn);
    path
}

/// Every key of every table, by table.
fn keys(path: &Path) -> BTreeMap<&'static str, BTreeSet<String>> {
    let conn = Connection::open(path).expect("open");
    conn.busy_timeout(Duration::from_secs(30)).expect("busy");
    KEYED
        .iter()
        .map(|(table, key)| {
            let mut stmt = conn
                .prepare(&format!("SELECT {key} FROM {table}"))
                .expect("select");
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            (*table, rows)
        })
        .collect()
}

fn text(v: &ArchiveValue) -> String {
    match v {
        ArchiveValue::Text(s) => s.clone(),
        ArchiveValue::TextBytes(b) | ArchiveValue::Blob(b) => String::from_utf8_lossy(b).into(),
        ArchiveValue::Integer(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// Keys of every row in a complete archive of `dir`, by table.
fn archived(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in list_archives(dir).expect("list archives") {
        let a = read_archive(&path).expect("every listed archive is complete");
        let col = |name: &str| a.header.columns.iter().position(|c| c == name);
        let key: Vec<usize> = match a.header.table.as_str() {
            "memory_entries" => vec![col("namespace").expect("ns"), col("key").expect("key")],
            "pattern_embeddings" => vec![col("pattern_id").expect("pattern_id")],
            _ => vec![col("id").expect("id")],
        };
        let set = out.entry(a.header.table.clone()).or_default();
        for row in &a.rows {
            let parts: Vec<String> = key.iter().map(|i| text(&row[*i])).collect();
            set.insert(parts.join("\u{1}"));
        }
    }
    out
}

/// The application: small transactions of new patterns and memory entries
/// (ids `w-...`, namespace `w-`) until stopped. Returns rows written.
fn start_writer(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let conn = Connection::open(&path).expect("writer open");
        conn.busy_timeout(Duration::from_secs(30)).expect("busy");
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let r = conn.execute_batch(&format!(
                "BEGIN; INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at)
                 VALUES ('w-{n}', 'writer', hex(randomblob(100)), 0.5, 0, datetime('now'));
                 INSERT INTO memory_entries (namespace, key, value, created_at) VALUES ('w-', 'k{n}', 'v', datetime('now'));
                 COMMIT;"
            ));
            match r {
                Ok(()) => n += 1,
                Err(_) => {
                    let _ = conn.execute_batch("ROLLBACK");
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        n
    })
}

/// Figures of one action's trials.
#[derive(Debug, Default)]
pub struct Figures {
    pub trials: usize,
    pub kills: usize,
    pub faults: Vec<String>,
    pub rows_lost: usize,
    pub statuses: BTreeMap<String, usize>,
    pub temporaries_removed: usize,
    pub writer_rows: u64,
}

fn run_child(dir: &Path, action: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .args(["run", action, "--database=memory"])
        .arg(format!(
            "--config.file={}",
            dir.join("caretaker.toml").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn caretaker run")
}

fn setup(base: &Path, dir: &Path) -> PathBuf {
    let db = dir.join("memory.db");
    std::fs::copy(base, &db).expect("copy base");
    std::fs::write(dir.join("caretaker.toml"), CONFIG).expect("config");
    db
}

/// One trial: run `action`, kill it after `delay` (None: let it finish),
/// check every promise and add to `figures`. Returns how long the run took.
fn trial(base: &Path, action: &str, delay: Option<Duration>, figures: &mut Figures) -> Duration {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let db = setup(base, dir);
    let before = keys(&db);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(db.clone(), stop.clone());
    let started = Instant::now();
    let mut child = run_child(dir, action);
    let killed = match delay {
        Some(d) => {
            std::thread::sleep(d);
            let running = child.try_wait().expect("try_wait").is_none();
            child.kill().expect("SIGKILL");
            child.wait().expect("wait");
            running
        }
        None => {
            let status = child.wait().expect("wait");
            assert!(status.success(), "{action} failed uncrashed: {status}");
            false
        }
    };
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    figures.writer_rows += writer.join().expect("writer");
    figures.trials += usize::from(delay.is_some());
    figures.kills += usize::from(killed);
    let mut faults = Vec::new();
    let mut fault = |what: String| faults.push(format!("{action}: {what}"));

    // 1. The database is intact.
    let conn = Connection::open(&db).expect("open after");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    if check != "ok" {
        fault(format!("integrity_check: {check}"));
    }
    drop(conn);

    // 2. Every row before is still there or in a complete archive.
    let config = Config::load(&dir.join("caretaker.toml")).expect("config");
    let dbc = &config.databases[0];
    let after = keys(&db);
    let archives = archived(&dbc.archive_dir);
    let mut lost = 0;
    for (table, rows) in &before {
        let kept = &after[table];
        let gone = archives.get(*table).cloned().unwrap_or_default();
        lost += rows
            .iter()
            .filter(|k| !kept.contains(*k) && !gone.contains(*k))
            .count();
    }
    if delay.is_none() && matches!(action, "prune_patterns" | "purge_expired") {
        assert!(
            !archives.is_empty(),
            "the uncrashed {action} archived nothing"
        );
    }
    if lost > 0 {
        fault(format!("{lost} rows lost"));
    }
    figures.rows_lost += lost;

    // 3. Only complete backups count: every verified file is a backup.
    let bdir = &dbc.backup.as_ref().expect("backup").dir;
    let far = Instant::now() + Duration::from_secs(300);
    if bdir.exists() {
        let (files, _) = list_folder(bdir, far, &mut ChecksumCache::default()).expect("list");
        for f in files.iter().filter(|f| f.verified) {
            if let Err(e) = verify_backup(&f.path, IntegrityMode::Quick, far, &Default::default()) {
                fault(format!("{} counted as verified: {e}", f.path.display()));
            }
        }
        for b in database_backups(bdir, "memory", far).expect("candidates") {
            let sidecar = PathBuf::from(format!("{}.sha256", b.path.display()));
            if b.verified && !sidecar.exists() {
                fault(format!("{} verified without a sidecar", b.path.display()));
            }
        }
    }

    // 4. Startup cleanup removes the temporaries.
    let removed = temporaries::remove_stale_temporaries(bdir).unwrap_or(0)
        + archive::remove_stale_temporaries(&dbc.archive_dir)
            .map(|v| v.len())
            .unwrap_or(0);
    figures.temporaries_removed += removed;
    for d in [bdir, &dbc.archive_dir] {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                fault(format!("{name} left after cleanup"));
            }
        }
    }

    // 5. The state database is intact and the killed job is interrupted.
    let state = config.responder.state_path.clone();
    if state.exists() {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        let (store, _) = StateStore::open(&state, now).expect("state opens");
        let jobs = store
            .jobs(&JobFilter {
                limit: 10,
                ..Default::default()
            })
            .expect("jobs");
        let requeued = store.queued().expect("queued");
        drop(store);
        let conn = Connection::open(&state).expect("state");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("state integrity");
        if check != "ok" {
            fault(format!("state integrity_check: {check}"));
        }
        let status = jobs.first().map_or("none", |j| j.status.as_str());
        *figures.statuses.entry(status.to_string()).or_default() += 1;
        match status {
            "interrupted" | "succeeded" | "none" => {}
            // Killed between recording and starting: left alone, never run by a daemon.
            "queued" if requeued.is_empty() => {}
            other => fault(format!("job left {other} after StateStore::open")),
        }
        if status == "succeeded" && action == "backup" {
            let verified = database_backups(bdir, "memory", far)
                .map(|b| b.iter().any(|b| b.verified))
                .unwrap_or(false);
            if !verified {
                fault("backup succeeded without a verified backup".into());
            }
        }
    } else {
        *figures.statuses.entry("none".into()).or_default() += 1;
    }
    figures.faults.extend(faults);
    elapsed
}

/// Runs `n` trials of `action` and returns their figures.
pub fn crash_trials(base: &Path, action: &str, n: usize) -> Figures {
    let mut figures = Figures::default();
    // One uncrashed run sets the range of the kill delays.
    let full = trial(base, action, None, &mut figures);
    figures.statuses.clear();
    figures.temporaries_removed = 0;
    assert!(figures.faults.is_empty(), "{:?}", figures.faults);
    let range = full.as_micros() as u64 * 12 / 10;
    for _ in 0..n {
        let delay = Duration::from_micros(rand::random_range(0..range.max(1)));
        trial(base, action, Some(delay), &mut figures);
    }
    eprintln!(
        "RELIABILITY crash action={action} uncrashed_ms={} trials={} kills={} faults={} rows_lost={} temporaries_removed={} writer_rows={} statuses={:?}",
        full.as_millis(),
        figures.trials,
        figures.kills,
        figures.faults.len(),
        figures.rows_lost,
        figures.temporaries_removed,
        figures.writer_rows,
        figures.statuses
    );
    figures
}

static BASE: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();

fn base() -> &'static Path {
    &BASE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = base_database(dir.path());
            (dir, path)
        })
        .1
}

fn assert_holds(action: &str) {
    let f = crash_trials(base(), action, trials());
    assert!(f.faults.is_empty(), "faults: {:#?}", f.faults);
    assert_eq!(f.rows_lost, 0);
}

#[test]
fn backup_survives_sigkill() {
    assert_holds("backup");
}

#[test]
fn prune_patterns_survives_sigkill() {
    assert_holds("prune_patterns");
}

#[test]
fn purge_expired_survives_sigkill() {
    assert_holds("purge_expired");
}

#[test]
fn vacuum_survives_sigkill() {
    assert_holds("vacuum");
}
