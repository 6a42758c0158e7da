//! tune_patterns changes exactly what seed 000's four steps describe (checked
//! against a model of the steps written here in Rust, row by row), archives
//! every changed row first, and one `caretaker restore-archive` gives back
//! the database as it was, REALs bit for bit and rowids included. A dry run
//! changes nothing, an interrupted run leaves the database as it was, and a
//! drifted schema is refused with a message.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use caretaker::actions::archive::{list_archives, read_archive, RestoreMode, SweepOptions};
use caretaker::actions::tune::TunePatterns;
use caretaker::actions::{Action, ActionContext, ActionError, Outcome};
use caretaker::config::{DatabaseConfig, IntegrityMode, PruneConfig, TuneConfig, VacuumConfig};
use rusqlite::types::Value;
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

use crate::common::{caretaker, create_db};
use crate::tune_model::{model, ModelCounts, CONF};

/// One table's rows by rowid, each value with its SQLite type (REALs by bits).
pub type Dump = BTreeMap<i64, Vec<Value>>;

const DAY: i64 = 86_400;

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

/// SQLite's own text for `now - days` (what the seeds compare `last_used` with).
fn ago(conn: &Connection, now: i64, secs: i64, iso_t: bool) -> String {
    let f = if iso_t {
        "%Y-%m-%dT%H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    conn.query_row(
        "SELECT strftime(?1, ?2, 'unixepoch')",
        params![f, now - secs],
        |r| r.get(0),
    )
    .expect("strftime")
}

/// Several shapes at once: duplicate groups across odd types, NULL
/// `last_used` and categories, usage counts around every threshold, text
/// where numbers belong, epochs where dates belong, embeddings on some
/// members of each group, confidences at the floor, the ceiling and below.
pub fn fill(conn: &Connection, now: i64, seed: u64, patterns: u64) {
    conn.execute_batch("BEGIN").expect("begin");
    let mut g = Lcg(seed);
    let types = [
        "code_review",
        "code \"review\"",
        "ünï\ncode",
        "",
        "goap_planning",
    ];
    let usages = [0, 1, 4, 5, 6, 99, 100, 101, 102, 150, 300];
    let days = [1, 29, 31, 59, 61, 90, 200];
    let confs = [0.95, 0.3, 0.2, 0.1 + 0.2, 0.93, 0.949_999_999, 0.0, 1.0];
    for i in 0..patterns {
        let typ = types[g.next(types.len() as u64) as usize];
        let data = match i % 6 {
            0 | 1 => format!("{{\"dup\":{}}}", g.next(12)),
            _ => format!("{{\"n\":{i},\"note\":\"{:x}\"}}", g.next(1 << 40)),
        };
        let conf: Value = match g.next(20) {
            0 => Value::Text("high".into()),
            1..=5 => Value::Real(confs[g.next(confs.len() as u64) as usize]),
            _ => Value::Real(g.next(1_000_000) as f64 / 999_983.0),
        };
        // Odd confidences only on unique rows: the model ranks numbers only.
        let data = match conf {
            Value::Text(_) => format!("odd-{i}"),
            _ => data,
        };
        let usage: Value = match g.next(25) {
            0 => Value::Text("many".into()),
            _ => Value::Integer(usages[g.next(usages.len() as u64) as usize]),
        };
        let offset = g.next(6 * 3600) as i64 - 3 * 3600;
        let last_used: Value = match g.next(8) {
            0 | 1 => Value::Null,
            2 => Value::Text((now - 90 * DAY).to_string()),
            n => {
                let d = days[g.next(days.len() as u64) as usize];
                Value::Text(ago(conn, now, d * DAY + offset, n == 3))
            }
        };
        let category: Value = match i % 3 {
            0 => Value::Null,
            _ => Value::Text(format!("cat-{}", i % 5)),
        };
        let id = match i % 50 {
            7 => format!("p{i}-\"quoted\"\n"),
            _ => format!("p{i}"),
        };
        let created = ago(conn, now, (g.next(300) as i64) * DAY, false);
        conn.execute(
            "INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at, last_used, category)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, typ, data, conf, usage, created, last_used, category],
        )
        .expect("insert pattern");
        if g.next(3) > 0 {
            let blob: Vec<u8> = (0..16).map(|_| g.next(256) as u8).collect();
            conn.execute(
                "INSERT INTO pattern_embeddings VALUES (?1, ?2, 4, ?3)",
                params![id, blob, created],
            )
            .expect("insert embedding");
        }
    }
    conn.execute_batch("COMMIT").expect("commit");
}

fn dump(conn: &Connection, table: &str) -> Dump {
    let mut stmt = conn
        .prepare(&format!("SELECT rowid, * FROM {table} ORDER BY rowid"))
        .expect("select");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        let values = (1..n)
            .map(|i| r.get::<_, Value>(i))
            .collect::<Result<_, _>>()?;
        Ok((r.get(0)?, values))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// Both tables, with REALs as their bits so equality is bit for bit.
pub fn state(path: &Path) -> (Dump, Dump) {
    let conn = Connection::open(path).expect("open");
    let bits = |d: Dump| -> Dump {
        d.into_iter()
            .map(|(k, v)| {
                let v = v
                    .into_iter()
                    .map(|x| match x {
                        Value::Real(f) => Value::Blob(f.to_bits().to_be_bytes().to_vec()),
                        other => other,
                    })
                    .collect();
                (k, v)
            })
            .collect()
    };
    (
        bits(dump(&conn, "patterns")),
        bits(dump(&conn, "pattern_embeddings")),
    )
}

pub fn database(dir: &Path, tune: TuneConfig) -> DatabaseConfig {
    DatabaseConfig {
        name: "memory".into(),
        path: dir.join("memory.db"),
        integrity_check: IntegrityMode::Quick,
        backup: None,
        archive_dir: dir.join("archive"),
        prune: PruneConfig::default(),
        tune,
        vacuum: VacuumConfig::default(),
        cleanup: Vec::new(),
        detail: Default::default(),
    }
}

pub fn enabled() -> TuneConfig {
    TuneConfig {
        enabled: true,
        ..TuneConfig::default()
    }
}

pub fn run(
    db: &DatabaseConfig,
    now: SystemTime,
    dry_run: bool,
    opts: &SweepOptions,
) -> Result<Outcome, ActionError> {
    let ctx = ActionContext {
        database: db,
        dry_run,
        deadline: Instant::now() + Duration::from_secs(300),
        now,
        stop: Default::default(),
        progress: Default::default(),
    };
    TunePatterns.run_with(&ctx, opts)
}

fn figure(o: &Outcome, name: &str) -> u64 {
    o.figures.get(name).copied().unwrap_or(-1.0) as u64
}

fn file_hash(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).expect("read")).to_vec()
}

/// A database filled with `seed`, and the model's state and counts after a run at `now`.
fn prepared(dir: &Path, now: i64, seed: u64) -> ((Dump, Dump), (Dump, Dump), ModelCounts) {
    let conn = create_db(&dir.join("memory.db"));
    fill(&conn, now, seed, 700);
    let demote_before = ago(&conn, now, 60 * DAY, false);
    let clear_before = ago(&conn, now, 30 * DAY, false);
    drop(conn);
    let before = state(&dir.join("memory.db"));
    let conn = Connection::open(dir.join("memory.db")).expect("open");
    let mut raw_p = dump(&conn, "patterns");
    let mut raw_e = dump(&conn, "pattern_embeddings");
    let counts = model(&mut raw_p, &mut raw_e, &demote_before, &clear_before);
    let tmp = dir.join("model.db");
    let m = create_db(&tmp);
    m.execute_batch("BEGIN").expect("begin");
    for (rowid, row) in &raw_p {
        let mut values = vec![Value::Integer(*rowid)];
        values.extend(row.iter().cloned());
        m.execute(
            "INSERT INTO patterns (rowid, id, type, pattern_data, confidence, usage_count, created_at, last_used, category)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params_from_iter(values),
        )
        .expect("model row");
    }
    for (rowid, row) in &raw_e {
        let mut values = vec![Value::Integer(*rowid)];
        values.extend(row.iter().cloned());
        m.execute(
            "INSERT INTO pattern_embeddings (rowid, pattern_id, embedding, dimension, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params_from_iter(values),
        )
        .expect("model embedding");
    }
    m.execute_batch("COMMIT").expect("commit");
    drop(m);
    let expected = state(&tmp);
    (before, expected, counts)
}

fn assert_counts(o: &Outcome, c: &ModelCounts) {
    assert_eq!(figure(o, "patterns_promoted"), c.promoted, "{}", o.summary);
    assert_eq!(figure(o, "patterns_demoted"), c.demoted, "{}", o.summary);
    assert_eq!(figure(o, "cache_marks_cleared"), c.cleared, "{}", o.summary);
    assert_eq!(figure(o, "duplicates_removed"), c.removed, "{}", o.summary);
    assert_eq!(
        figure(o, "duplicates_kept_updated"),
        c.kept_updated,
        "{}",
        o.summary
    );
    assert_eq!(
        figure(o, "embeddings_repointed"),
        c.repointed,
        "{}",
        o.summary
    );
    assert_eq!(figure(o, "embeddings_deleted"), c.deleted, "{}", o.summary);
}

#[test]
fn each_step_changes_what_the_seed_describes_and_a_dry_run_counts_it_first() {
    for seed in [1, 2, 3] {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = SystemTime::now();
        let (before, expected, counts) = prepared(dir.path(), unix(now), seed);
        // Every step has work in these shapes, or the test would prove little.
        assert!(
            counts.promoted > 0 && counts.demoted > 0 && counts.cleared > 0,
            "{counts:?}"
        );
        assert!(
            counts.removed > 0 && counts.repointed > 0 && counts.deleted > 0,
            "{counts:?}"
        );
        let db = database(dir.path(), enabled());
        let file = db.path.clone();

        let hash = file_hash(&file);
        let dry = run(&db, now, true, &SweepOptions::default()).expect("dry run");
        assert_counts(&dry, &counts);
        assert_eq!(file_hash(&file), hash, "a dry run changed the file");
        assert!(list_archives(&db.archive_dir).expect("list").is_empty());

        let done = run(&db, now, false, &SweepOptions::default()).expect("run");
        assert_counts(&done, &counts);
        assert_eq!(state(&file), expected, "seed {seed}");
        assert_ne!(state(&file), before);
        let archives = list_archives(&db.archive_dir).expect("list");
        assert_eq!(archives.len(), 2, "{archives:?}");
        for path in &archives {
            let a = read_archive(path).expect("complete");
            assert_eq!(a.header.restore, RestoreMode::Rowid);
            assert_eq!(a.header.reason, "tune");
        }
    }
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    caretaker()
        .current_dir(dir)
        .args(args)
        .arg("--config.file=caretaker.toml")
        .output()
        .expect("run caretaker")
}

pub const CONFIG: &str = r#"
[[database]]
name = "memory"
path = "memory.db"
[database.tune]
enabled = true

[responder]
state_file = "state.db"
"#;

#[test]
fn one_restore_archive_undoes_a_run_of_the_real_binary_bit_for_bit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = unix(SystemTime::now());
    let (before, expected, counts) = prepared(dir.path(), now, 7);
    std::fs::write(dir.path().join("caretaker.toml"), CONFIG).expect("config");

    let out = cli(dir.path(), &["run", "tune_patterns", "--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let dry = |name: &str| job["outcome"]["figures"][name].as_f64().unwrap_or(-1.0) as u64;
    assert_eq!(dry("patterns_demoted"), counts.demoted, "{job}");
    assert_eq!(dry("embeddings_repointed"), counts.repointed, "{job}");
    assert_eq!(
        state(&dir.path().join("memory.db")),
        before,
        "the dry run changed rows"
    );

    let out = cli(dir.path(), &["run", "tune_patterns"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let figure = |name: &str| job["outcome"]["figures"][name].as_f64().unwrap_or(-1.0) as u64;
    assert_eq!(figure("patterns_promoted"), counts.promoted, "{job}");
    assert_eq!(figure("duplicates_removed"), counts.removed, "{job}");
    assert_eq!(state(&dir.path().join("memory.db")), expected);

    let summary = job["outcome"]["summary"].as_str().expect("summary");
    let (_, files) = summary
        .split_once("caretaker restore-archive ")
        .expect("undo command");
    let mut args = vec!["restore-archive"];
    args.extend(files.split(' '));
    let out = cli(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        state(&dir.path().join("memory.db")),
        before,
        "the undo differs"
    );
    // Idempotent: a second undo changes nothing.
    let out = cli(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state(&dir.path().join("memory.db")), before);
    let conn = Connection::open(dir.path().join("memory.db")).expect("open");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(ok, "ok");
}

mod refusals;
