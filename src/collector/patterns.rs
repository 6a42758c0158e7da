//! The pattern library's shape: tiers, types, categories, usage, and the rows
//! the runbooks would prune or flag.
//!
//! Every figure comes from one pass over the table ([`super::pattern_scan`]);
//! this module bounds the groups and names the series.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use super::labels::{breakdown, breakdown_limit, fold, top_keys};
use super::last_pass::now_seconds;
use super::pattern_scan::{scan, Scan};
use super::{CollectError, Collector};
use crate::config::{Detail, PruneConfig};
use crate::metrics::MetricSet;
use crate::store::sqlite::{existing_tables, open_monitor};
use crate::store::stamp::FileStamp;

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
    pub fn add(&mut self, o: &TypeStats) {
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
    /// At `summary` the per-type and per-category series are summed into one.
    detail: Detail,
    /// The last scan and the file stamp it was read under: carried forward
    /// while the file is unchanged.
    last: Mutex<Option<(FileStamp, Option<Scan>)>>,
}

impl PatternsCollector {
    pub fn new(path: &Path, label_limit: usize, prune: PruneConfig) -> Self {
        Self {
            path: path.to_path_buf(),
            label_limit,
            prune,
            detail: Detail::Full,
            last: Mutex::default(),
        }
    }

    pub fn with_detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }
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

fn emit_types(set: &mut MetricSet, types: &BTreeMap<String, TypeStats>, detail: Detail) {
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
                [
                    breakdown(detail, "pattern_type", ty.clone()),
                    vec![("confidence_tier", tier.into())],
                ]
                .concat(),
                n,
            );
        }
        if s.count > 0.0 {
            let l = || breakdown(detail, "pattern_type", ty.clone());
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

impl Collector for PatternsCollector {
    fn name(&self) -> &'static str {
        "patterns"
    }

    /// The last scan carried forward to this second while the file stands
    /// still (see [`super::pattern_clock`]), else a new scan.
    fn collect(&self, deadline: Instant) -> Result<MetricSet, CollectError> {
        let now = now_seconds();
        // Taken before reading: a write during the scan shows at the next pass.
        let stamp = FileStamp::read(&self.path).ok();
        let mut kept = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(stamp), Some((was, scan))) = (&stamp, kept.as_ref()) {
            let carried = scan.as_ref().is_none_or(|s| s.flips.is_some());
            if was == stamp && carried {
                return Ok(self.emit(scan.as_ref(), now));
            }
        }
        *kept = None;
        let scan = self.read(deadline, now)?;
        let set = self.emit(scan.as_ref(), now);
        if let Some(stamp) = stamp {
            *kept = Some((stamp, scan));
        }
        Ok(set)
    }
}

impl PatternsCollector {
    /// One scan of the table at unix second `now`; `None` without one.
    fn read(&self, deadline: Instant, now: i64) -> Result<Option<Scan>, CollectError> {
        let mut conn = open_monitor(&self.path, deadline)?;
        if !existing_tables(&conn)?.iter().any(|t| t == "patterns") {
            return Ok(None);
        }
        // One read transaction: every figure describes the same moment.
        let tx = conn.transaction()?;
        let scan = scan(&tx, &self.prune, now)?;
        tx.finish()?;
        Ok(Some(scan))
    }

    /// The series of `scan` at unix second `now`.
    fn emit(&self, scan: Option<&Scan>, now: i64) -> MetricSet {
        let mut set = MetricSet::new();
        let Some(scan) = scan else {
            return set;
        };
        let limit = breakdown_limit(self.detail, self.label_limit);
        let types = fold_groups(scan.types_at(now), |s| s.count, TypeStats::add, limit);
        emit_types(&mut set, &types, self.detail);
        // At `summary` the one folded series would be the pattern count that
        // caretaker_table_rows{table="patterns"} already is: left out.
        if self.detail == Detail::Full {
            let categories = fold_groups(scan.categories.clone(), |v| *v, |a, b| *a += b, limit);
            for (category, n) in categories {
                set.gauge(
                    "caretaker_patterns_by_category",
                    "Patterns per category",
                    breakdown(self.detail, "category", category),
                    n,
                );
            }
        }
        set.gauge(
            "caretaker_pattern_duplicates",
            "Patterns that share their type and pattern_data with another",
            vec![],
            scan.duplicates,
        );
        set
    }
}
