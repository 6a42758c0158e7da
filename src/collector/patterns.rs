//! The pattern library's shape: tiers, types, categories, usage, and the rows
//! the runbooks would prune or flag.
//!
//! Seed 000 and 001 compute these figures with a dozen separate queries, one
//! scan each. Here one `GROUP BY type` pass computes every per-row figure as a
//! `SUM` column, with the time thresholds computed once and bound as
//! parameters; categories use their index, and duplicates are counted by hashing
//! each row in one scan instead of sorting the table.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::labels::{fold, label_value, top_keys};
use super::sqlite::{datetime_ago, existing_tables, open_monitor};
use super::{CollectError, Collector};
use crate::config::PruneConfig;
use crate::metrics::MetricSet;

/// Confidence tiers of seed 000, highest first, with their lower bounds.
pub const TIERS: [(&str, f64); 5] = [
    ("excellent", 0.9),
    ("very_good", 0.8),
    ("good", 0.7),
    ("fair", 0.6),
    ("moderate", 0.5),
];
/// Everything below the last bound.
pub const LOW_TIER: &str = "low";

const BY_TYPE: &str = "
SELECT type, COUNT(*),
  SUM(confidence >= 0.9),
  SUM(confidence >= 0.8 AND confidence < 0.9),
  SUM(confidence >= 0.7 AND confidence < 0.8),
  SUM(confidence >= 0.6 AND confidence < 0.7),
  SUM(confidence >= 0.5 AND confidence < 0.6),
  TOTAL(confidence), TOTAL(usage_count),
  SUM(usage_count > 10), SUM(usage_count <= 2), SUM(last_used > ?1),
  TOTAL(CASE WHEN last_used > ?1 THEN usage_count ELSE 0 END),
  SUM((last_used < ?2 AND usage_count < ?4)
      OR (confidence < ?5 AND last_used IS NULL)
      OR (created_at < ?3 AND usage_count = 0)),
  SUM(confidence < 0 OR confidence > 1 OR usage_count < 0 OR created_at IS NULL)
FROM patterns GROUP BY type";

/// The sums of one group of patterns (one type, or everything folded).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TypeStats {
    pub count: f64,
    /// Counts per tier in [`TIERS`] order; `low` is what is left.
    pub tiers: [f64; 5],
    pub confidence_sum: f64,
    pub usage_sum: f64,
    pub hot: f64,
    pub cold: f64,
    pub recent: f64,
    pub recent_usage: f64,
    pub prune: f64,
    pub invalid: f64,
}

impl TypeStats {
    fn add(&mut self, o: &TypeStats) {
        self.count += o.count;
        for (a, b) in self.tiers.iter_mut().zip(o.tiers) {
            *a += b;
        }
        self.confidence_sum += o.confidence_sum;
        self.usage_sum += o.usage_sum;
        self.hot += o.hot;
        self.cold += o.cold;
        self.recent += o.recent;
        self.recent_usage += o.recent_usage;
        self.prune += o.prune;
        self.invalid += o.invalid;
    }

    fn low(&self) -> f64 {
        self.count - self.tiers.iter().sum::<f64>()
    }
}

pub struct PatternsCollector {
    path: PathBuf,
    label_limit: usize,
    /// The database's pruning criteria: the gauge counts what prune_patterns would remove.
    prune: PruneConfig,
}

impl PatternsCollector {
    pub fn new(path: &Path, label_limit: usize, prune: PruneConfig) -> Self {
        Self {
            path: path.to_path_buf(),
            label_limit,
            prune,
        }
    }
}

fn by_type(conn: &Connection, prune: &PruneConfig) -> rusqlite::Result<Vec<(String, TypeStats)>> {
    let hour_ago = datetime_ago(conn, Duration::from_secs(3600))?;
    let unused_before = datetime_ago(conn, prune.unused_after)?;
    let never_used_before = datetime_ago(conn, prune.never_used_after)?;
    let mut stmt = conn.prepare(BY_TYPE)?;
    let params = rusqlite::params![
        hour_ago,
        unused_before,
        never_used_before,
        prune.unused_max_usage,
        prune.low_confidence
    ];
    let rows = stmt.query_map(params, |r| {
        let f = |i: usize| r.get::<_, Option<f64>>(i).map(|v| v.unwrap_or(0.0));
        Ok((
            label_value(r.get::<_, Option<String>>(0)?),
            TypeStats {
                count: f(1)?,
                tiers: [f(2)?, f(3)?, f(4)?, f(5)?, f(6)?],
                confidence_sum: f(7)?,
                usage_sum: f(8)?,
                hot: f(9)?,
                cold: f(10)?,
                recent: f(11)?,
                recent_usage: f(12)?,
                prune: f(13)?,
                invalid: f(14)?,
            },
        ))
    })?;
    rows.collect()
}

/// Folds groups past the label limit into `other`, merging NULL and empty.
pub fn fold_groups<T: Default + Clone>(
    groups: Vec<(String, T)>,
    weight: impl Fn(&T) -> f64,
    add: impl Fn(&mut T, &T),
    limit: usize,
) -> BTreeMap<String, T> {
    let mut merged: BTreeMap<String, T> = BTreeMap::new();
    for (k, v) in groups {
        add(merged.entry(k).or_default(), &v);
    }
    let kept = top_keys(
        merged.iter().map(|(k, v)| (k.clone(), weight(v))).collect(),
        limit,
    );
    let mut out: BTreeMap<String, T> = BTreeMap::new();
    for (k, v) in merged {
        let label = fold(&k, &kept).to_string();
        add(out.entry(label).or_default(), &v);
    }
    out
}

fn emit_types(set: &mut MetricSet, types: &BTreeMap<String, TypeStats>) {
    let mut all = TypeStats::default();
    for (ty, s) in types {
        all.add(s);
        let tiers = TIERS
            .iter()
            .map(|t| t.0)
            .zip(s.tiers)
            .chain([(LOW_TIER, s.low())]);
        for (tier, n) in tiers {
            set.gauge(
                "caretaker_patterns",
                "Patterns per type and confidence tier (seed 000's tiers)",
                vec![
                    ("pattern_type", ty.clone()),
                    ("confidence_tier", tier.into()),
                ],
                n,
            );
        }
        if s.count > 0.0 {
            let l = || vec![("pattern_type", ty.clone())];
            set.gauge(
                "caretaker_pattern_confidence_average",
                "Average confidence of the patterns of a type",
                l(),
                s.confidence_sum / s.count,
            );
            set.gauge(
                "caretaker_pattern_usage_average",
                "Average usage_count of the patterns of a type",
                l(),
                s.usage_sum / s.count,
            );
        }
    }
    set.gauge(
        "caretaker_patterns_hot",
        "Patterns used more than 10 times",
        vec![],
        all.hot,
    );
    set.gauge(
        "caretaker_patterns_cold",
        "Patterns used at most 2 times",
        vec![],
        all.cold,
    );
    set.gauge(
        "caretaker_patterns_recently_used",
        "Patterns used within the last hour",
        vec![],
        all.recent,
    );
    if all.usage_sum > 0.0 {
        set.gauge(
            "caretaker_pattern_cache_hit_ratio",
            "Share of all pattern uses that belong to patterns used within the last hour (seed 000)",
            vec![],
            all.recent_usage / all.usage_sum,
        );
    }
    set.gauge(
        "caretaker_pattern_prune_candidates",
        "Patterns matching any of the database's three pruning criteria (seed 001's by default)",
        vec![],
        all.prune,
    );
    set.gauge(
        "caretaker_pattern_invalid_rows",
        "Patterns with confidence outside [0,1], negative usage or no created_at",
        vec![],
        all.invalid,
    );
}

fn categories(conn: &Connection, limit: usize) -> rusqlite::Result<BTreeMap<String, f64>> {
    let mut stmt = conn.prepare("SELECT category, COUNT(*) FROM patterns GROUP BY category")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            label_value(r.get::<_, Option<String>>(0)?),
            r.get::<_, f64>(1)?,
        ))
    })?;
    let groups = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(fold_groups(groups, |v| *v, |a, b| *a += b, limit))
}

/// Patterns that share their type and pattern_data with another: the seeds'
/// `GROUP BY type, pattern_data HAVING COUNT(*) > 1`, summed. SQLite answers
/// that by sorting every row (4.3 s of 6 at a million patterns); one scan
/// counting a 128-bit hash of each (type, pattern_data) pair gives the same
/// figure in a fraction of it.
fn duplicates(conn: &Connection) -> rusqlite::Result<f64> {
    let mut stmt = conn.prepare("SELECT type, pattern_data FROM patterns")?;
    let mut rows = stmt.query([])?;
    let mut seen: HashMap<u128, u32> = HashMap::new();
    while let Some(row) = rows.next()? {
        let key = group_key(row.get_ref(0)?, row.get_ref(1)?);
        *seen.entry(key).or_default() += 1;
    }
    Ok(seen
        .values()
        .filter(|n| **n > 1)
        .map(|n| f64::from(*n))
        .sum())
}

/// A 128-bit hash of a pair of values that is equal exactly when SQLite's
/// GROUP BY puts the pairs in one group: NULLs together, integers and reals
/// by numeric value, text and blobs by their bytes and never with each other.
fn group_key(a: ValueRef<'_>, b: ValueRef<'_>) -> u128 {
    let hash = |salt: u64| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        for v in [a, b] {
            match v {
                ValueRef::Null => 0u8.hash(&mut h),
                // 1 and 1.0 are one group; -0.0 and 0.0 too.
                ValueRef::Integer(i) if (i as f64) as i64 == i => {
                    (1u8, (i as f64 + 0.0).to_bits()).hash(&mut h)
                }
                ValueRef::Integer(i) => (4u8, i).hash(&mut h),
                ValueRef::Real(r) => (1u8, (r + 0.0).to_bits()).hash(&mut h),
                ValueRef::Text(t) => (2u8, t).hash(&mut h),
                ValueRef::Blob(b) => (3u8, b).hash(&mut h),
            }
        }
        h.finish()
    };
    (u128::from(hash(0)) << 64) | u128::from(hash(1))
}

impl Collector for PatternsCollector {
    fn name(&self) -> &'static str {
        "patterns"
    }

    fn collect(&self, deadline: Instant) -> Result<MetricSet, CollectError> {
        let mut conn = open_monitor(&self.path, deadline)?;
        let mut set = MetricSet::new();
        if !existing_tables(&conn)?.iter().any(|t| t == "patterns") {
            return Ok(set);
        }
        // One read transaction: every figure describes the same moment.
        let tx = conn.transaction()?;
        let types = fold_groups(
            by_type(&tx, &self.prune)?,
            |s| s.count,
            TypeStats::add,
            self.label_limit,
        );
        emit_types(&mut set, &types);
        for (category, n) in categories(&tx, self.label_limit)? {
            set.gauge(
                "caretaker_patterns_by_category",
                "Patterns per category",
                vec![("category", category)],
                n,
            );
        }
        set.gauge(
            "caretaker_pattern_duplicates",
            "Patterns that share their type and pattern_data with another",
            vec![],
            duplicates(&tx)?,
        );
        tx.finish()?;
        Ok(set)
    }
}
