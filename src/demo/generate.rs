//! Builds the realistic agent-memory database for `caretaker demo` and the benchmark workload.
//!
//! The demo needs a database in which every metric and action has something to show: all six
//! confidence tiers, rows for each of the runbook's three prune criteria, invalid rows and
//! orphaned embeddings for the integrity checks, expired memory entries, history older than the
//! 90-day retention. With a million patterns it is also the benchmarks' large database, so it
//! writes in big transactions, builds indexes last and stays non-durable until the checkpoint.
//!
//! The output depends on [`GenerateOptions`] alone: the seed drives one `StdRng` and every
//! timestamp is an offset from the injected `now`, written as `datetime('now')` text so that the
//! runbooks' `datetime('now', '-90 days')` comparisons work on it unchanged.

use super::vocabulary::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection, Params, Transaction};

/// The database runbook's schema: 7 tables and 7 indexes.
pub const SCHEMA: &str = include_str!("../schema.sql");

pub(super) const HOUR: i64 = 3_600;
pub(super) const DAY: i64 = 86_400;
/// Rows per transaction: large enough that commits cost nothing, small enough to bound the WAL.
const BATCH: u64 = 100_000;
const EMBEDDING_DIM: i64 = 64;

/// What to generate. `now` is the clock every timestamp is relative to (unix seconds).
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub patterns: u64,
    pub pattern_bytes: usize,
    pub seed: u64,
    pub now: i64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH);
        let now = now.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let (patterns, pattern_bytes, seed) = (5000, 200, 42);
        Self {
            patterns,
            pattern_bytes,
            seed,
            now,
        }
    }
}

/// Rows written per table, and the planted problems caretaker should find.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateSummary {
    pub patterns: u64,
    /// Every row of `pattern_embeddings`, orphans included.
    pub embeddings: u64,
    /// Embeddings whose `pattern_id` names no pattern.
    pub orphaned_embeddings: u64,
    pub trajectories: u64,
    pub verifications: u64,
    pub memory_entries: u64,
    /// Memory entries whose `expires_at` is before `now`.
    pub expired_entries: u64,
    pub metrics_log: u64,
    pub migrations: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Creates a new database at `path` and fills it. Never opens an existing file; deletes its own
/// half-written one if anything fails, so that a retry starts clean.
pub fn generate(path: &Path, opts: &GenerateOptions) -> Result<GenerateSummary, GenerateError> {
    if path.symlink_metadata().is_ok() {
        return Err(GenerateError::Exists(path.to_path_buf()));
    }
    let (rng, sum) = (StdRng::seed_from_u64(opts.seed), GenerateSummary::default());
    let run = Generation { rng, opts, sum };
    Connection::open(path)
        .and_then(|mut conn| run.fill(&mut conn))
        .map_err(|e| {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                let _ = std::fs::remove_file(name);
            }
            e.into()
        })
}

/// One run of the generator: the random source, the options and the counts so far.
struct Generation<'a> {
    rng: StdRng,
    opts: &'a GenerateOptions,
    sum: GenerateSummary,
}

impl Generation<'_> {
    fn fill(mut self, conn: &mut Connection) -> rusqlite::Result<GenerateSummary> {
        // WAL is the mode the agents run their database in. While generating, durability is off
        // (a crash leaves a file we delete anyway), the cache is big enough for the index builds,
        // and foreign keys are off so that orphaned embeddings can be planted.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;
             PRAGMA temp_store=MEMORY; PRAGMA foreign_keys=OFF;",
        )?;
        conn.execute_batch(SCHEMA)?;
        // The secondary indexes are dropped and rebuilt once the rows are in: one sort per index
        // costs less than a million inserts at random places in each.
        let sql = "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL";
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)));
        let indexes = rows?.collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        for (name, _) in &indexes {
            conn.execute_batch(&format!("DROP INDEX \"{name}\""))?;
        }
        self.patterns(conn)?;
        self.history(conn)?;
        self.memory_entries(conn)?;
        self.metrics(conn)?;
        for (_, sql) in &indexes {
            conn.execute_batch(sql)?;
        }
        // Back to full durability, then fold the WAL into the main file so that the file alone
        // is the complete database (it may be copied before anyone opens it again).
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA cache_size=-2000;")?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(self.sum)
    }

    /// Patterns with their embeddings, then the orphaned embeddings of patterns since deleted.
    fn patterns(&mut self, conn: &mut Connection) -> rusqlite::Result<()> {
        let Self { rng, opts, sum } = self;
        let (now, bytes, mut kind, mut data) = (opts.now, opts.pattern_bytes, "", String::new());
        let filler = &filler(rng, bytes);
        let insert_pattern = "INSERT INTO patterns VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        let insert_embedding = "INSERT INTO pattern_embeddings VALUES (?1, ?2, ?3, ?4)";
        sum.patterns = batched(conn, opts.patterns, |tx, i| {
            // Sizes vary around `pattern_bytes`; about 0.5% duplicate the previous pattern.
            if i == 0 || !rng.random_ratio(1, 200) {
                kind = pick(rng, &PATTERN_TYPES);
                let [goal, pre, post] = [(); 3].map(|()| WORDS[rng.random_range(0..WORDS.len())]);
                let steps = rng.random_range(1..12);
                data.clear();
                let _ = write!(data, r#"{{"type":"{kind}","goal":"{goal}","#);
                let _ = write!(data, r#""steps":{steps},"requires":["{pre}","{post}"],"#);
                data.push_str(r#""notes":""#);
                let size = rng.random_range(bytes / 2..=bytes.saturating_mul(3) / 2);
                data.push_str(slice(rng, filler, size.saturating_sub(data.len() + 2)));
                data.push_str("\"}");
            }
            let (lo, hi) = pick(rng, &TIERS);
            let mut confidence = round4(rng.random_range(lo..hi));
            let age = rng.random_range(0..400 * DAY);
            // 15% never used; the busiest patterns are mostly the ones used in the last hour.
            let (used_lo, used_hi) = pick(rng, &USAGE);
            let mut usage = rng.random_range(used_lo..=used_hi);
            let last_used = if rng.random_bool(0.15) {
                usage = 0;
                None
            } else if rng.random_bool(if usage > 100 { 0.7 } else { 0.05 }) {
                Some(now - rng.random_range(0..=age.min(HOUR - 1)))
            } else {
                Some(now - age + rng.random_range(0..=age))
            };
            // About 0.1% break the runbook's consistency check.
            if rng.random_ratio(1, 1000) {
                match rng.random_range(0..3) {
                    0 => confidence = round4(rng.random_range(1.01..1.5)),
                    1 => confidence = round4(rng.random_range(-0.2..-0.01)),
                    _ => usage = -rng.random_range(1..=5),
                }
            }
            let (id, created) = (format!("pat-{:06}", i + 1), sqlite_time(now - age));
            let (last_used, category) = (last_used.map(sqlite_time), pick(rng, &CATEGORIES));
            let row = params![id, kind, data, confidence, usage, created, last_used, category];
            insert(tx, insert_pattern, row)?;
            if rng.random_bool(0.8) {
                let row = params![id, embedding(rng), EMBEDDING_DIM, created];
                insert(tx, insert_embedding, row)?;
                sum.embeddings += 1;
            }
            Ok(())
        })?;
        sum.orphaned_embeddings = batched(conn, opts.patterns.div_ceil(100), |tx, i| {
            let id = format!("pat-{:06}", opts.patterns + 1 + i);
            let created = sqlite_time(now - rng.random_range(200 * DAY..400 * DAY));
            let row = params![id, embedding(rng), EMBEDDING_DIM, created];
            insert(tx, insert_embedding, row)
        })?;
        sum.embeddings += sum.orphaned_embeddings;
        Ok(())
    }

    /// Task trajectories and their verifications over 200 days, so the 90-day retention has work
    /// to do. Each agent has its own reliability, so per-agent truth scores differ visibly.
    fn history(&mut self, conn: &mut Connection) -> rusqlite::Result<()> {
        let Self { rng, opts, sum } = self;
        let (now, tasks, filler) = (opts.now, opts.patterns / 2, &filler(rng, 200));
        let insert_trajectory = "INSERT INTO task_trajectories VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
        let insert_verification =
            "INSERT INTO verification_history VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
        sum.trajectories = batched(conn, tasks, |tx, i| {
            let outcome = pick(rng, &OUTCOMES);
            let ms = match outcome {
                "timeout" => 300_000 + rng.random_range(0..5_000),
                _ => rng.random_range(5.0f64..11.5).exp() as i64,
            };
            let agent = AGENTS[rng.random_range(0..AGENTS.len())];
            let pattern = rng.random_range(1..=opts.patterns.max(1));
            let (steps, tokens) = (rng.random_range(1..40), rng.random_range(200..40_000));
            let mut data = format!(r#"{{"agent":"{agent}","pattern_id":"pat-{pattern:06}","#);
            let log = slice(rng, filler, 120);
            let _ = write!(data, r#""steps":{steps},"tokens":{tokens},"log":"{log}"}}"#);
            let task_type = TASK_TYPES[rng.random_range(0..TASK_TYPES.len())];
            let id = format!("traj-{:06}", i + 1);
            let created = sqlite_time(now - rng.random_range(0..200 * DAY));
            let row = params![id, task_type, data, outcome, ms, created];
            insert(tx, insert_trajectory, row)
        })?;
        sum.verifications = batched(conn, opts.patterns / 2, |tx, i| {
            let a = rng.random_range(0..AGENTS.len());
            let miss = rng.random::<f64>().powi(5) * 0.7;
            let score = round4((0.99 - 0.015 * a as f64 - miss).clamp(0.0, 1.0));
            let status = match score {
                s if s >= 0.85 => "passed",
                s if s >= 0.7 => "warning",
                _ => "failed",
            };
            let failed = ((1.0 - score) * 12.0) as i64;
            let details = rng.random_bool(0.9).then(|| {
                let notes = slice(rng, filler, 60);
                format!(r#"{{"checks":12,"failed_checks":{failed},"notes":"{notes}"}}"#)
            });
            let task = format!("traj-{:06}", rng.random_range(1..=tasks.max(1)));
            let id = format!("ver-{:06}", i + 1);
            let at = sqlite_time(now - rng.random_range(0..200 * DAY));
            let row = params![id, AGENTS[a], task, score, status, details, at];
            insert(tx, insert_verification, row)
        })?;
        Ok(())
    }

    /// Memory entries: 15% permanent (NULL ttl and expires_at), 20% expired, the rest live for
    /// at least another hour, so a check run a little after `now` counts the same expired ones.
    fn memory_entries(&mut self, conn: &mut Connection) -> rusqlite::Result<()> {
        let Self { rng, opts, sum } = self;
        let (now, filler) = (opts.now, &filler(rng, 200));
        let sql = "INSERT INTO memory_entries VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
        sum.memory_entries = batched(conn, opts.patterns / 5, |tx, i| {
            let ttl = TTLS[rng.random_range(0..TTLS.len())];
            let r = rng.random::<f64>();
            let (ttl, created, expires) = if r < 0.15 {
                (None, now - rng.random_range(0..120 * DAY), None)
            } else if r < 0.35 {
                sum.expired_entries += 1;
                let expires = now - rng.random_range(60..30 * DAY);
                (Some(ttl), expires - ttl, Some(expires))
            } else {
                let expires = now + HOUR + rng.random_range(0..=ttl - HOUR);
                (Some(ttl), expires - ttl, Some(expires))
            };
            let (v, text) = (rng.random_range(1..1000), slice(rng, filler, 100));
            let value = format!(r#"{{"v":{v},"text":"{text}"}}"#);
            let (namespace, key) = (pick(rng, &NAMESPACES), format!("key-{:06}", i + 1));
            let (created, expires) = (sqlite_time(created), expires.map(sqlite_time));
            let row = params![namespace, key, value, ttl, created, expires];
            insert(tx, sql, row)
        })?;
        Ok(())
    }

    /// 90 days of what the runbooks log (hourly ops/s, 6-hourly cache hit rate, the daily job's
    /// figures), then the migration history, named the way the runbook names migration files.
    fn metrics(&mut self, conn: &mut Connection) -> rusqlite::Result<()> {
        let Self { rng, opts, sum } = self;
        let start = opts.now - opts.now.rem_euclid(DAY) - 90 * DAY;
        let n = opts.patterns as f64;
        let size_mb = n * (opts.pattern_bytes as f64 + 900.0) / 1_048_576.0;
        let sql =
            "INSERT INTO metrics_log (metric_name, metric_value, timestamp) VALUES (?1, ?2, ?3)";
        batched(conn, 90 * 24, |tx, h| {
            let at = sqlite_time(start + h as i64 * HOUR);
            let growth = 0.6 + h as f64 / 5400.0;
            let ops = 180.0 + 40.0 * (h as f64 / 24.0 * std::f64::consts::TAU).sin();
            let (daily, six_hourly) = (h % 24 == 2, h % 6 == 0);
            #[rustfmt::skip]
            let rows = [
                (true, "neural_operations_per_second", ops + rng.random_range(-15.0..15.0)),
                (six_hourly, "cache_hit_rate", rng.random_range(0.70..0.92)),
                (daily, "daily_pattern_count", (n * growth).round()),
                (daily, "daily_avg_confidence", 0.69 + rng.random_range(-0.02..0.02)),
                (daily, "daily_db_size_mb", size_mb * growth),
            ];
            for (_, name, value) in rows.into_iter().filter(|row| row.0) {
                insert(tx, sql, params![name, round4(value), at])?;
                sum.metrics_log += 1;
            }
            Ok(())
        })?;
        let sql = "INSERT INTO migrations_applied (filename, applied_at) VALUES (?1, ?2)";
        sum.migrations = batched(conn, MIGRATIONS.len() as u64, |tx, k| {
            let at = sqlite_time(opts.now - 400 * DAY + 61 * DAY * k as i64 + 7 * HOUR);
            let stamp: String = at.chars().filter(char::is_ascii_digit).collect();
            let file = format!("{stamp}_{}.sql", MIGRATIONS[k as usize]);
            insert(tx, sql, params![file, at])
        })?;
        Ok(())
    }
}

/// Calls `row` for 0..n, committing every [`BATCH`] rows; returns n.
fn batched<F>(conn: &mut Connection, n: u64, mut row: F) -> rusqlite::Result<u64>
where
    F: FnMut(&Transaction, u64) -> rusqlite::Result<()>,
{
    for start in (0..n).step_by(BATCH as usize) {
        let tx = conn.transaction()?;
        for i in start..n.min(start + BATCH) {
            row(&tx, i)?;
        }
        tx.commit()?;
    }
    Ok(n)
}

fn insert(tx: &Transaction, sql: &str, row: impl Params) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.execute(row).map(drop)
}

/// One of `items`, chosen with probability proportional to its weight.
fn pick<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let mut r = rng.random_range(0..items.iter().map(|i| i.1).sum::<u32>());
    for &(item, weight) in items {
        if r < weight {
            return item;
        }
        r -= weight;
    }
    items[items.len() - 1].0
}

/// An embedding blob: `EMBEDDING_DIM` random little-endian f32s.
fn embedding(rng: &mut StdRng) -> Vec<u8> {
    let values = (0..EMBEDDING_DIM).map(|_| rng.random_range(-1.0f32..1.0));
    values.flat_map(f32::to_le_bytes).collect()
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// A pool of random words that rows take slices of: a copy per row, not a draw per word.
fn filler(rng: &mut StdRng, row_bytes: usize) -> String {
    let mut pool = String::new();
    while pool.len() < row_bytes.saturating_mul(2).max(65_536) {
        pool.push_str(WORDS[rng.random_range(0..WORDS.len())]);
        pool.push(' ');
    }
    pool
}

/// `len` bytes of `pool` from a random offset (the pool is ASCII, so any offset is a boundary).
fn slice<'a>(rng: &mut StdRng, pool: &'a str, len: usize) -> &'a str {
    let len = len.min(pool.len());
    let at = rng.random_range(0..=pool.len() - len);
    &pool[at..at + len]
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, the text `datetime('now')` writes.
fn sqlite_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "generate_tests.rs"]
mod tests;
