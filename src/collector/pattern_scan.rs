//! One sequential pass over the `patterns` table that yields every figure the
//! patterns collector publishes.
//!
//! Seeds 000 and 001 compute these figures with a dozen queries, each a scan
//! or a sort of the whole table. At a million patterns the cost is in how the
//! table is walked, not in the arithmetic: `GROUP BY type` walks the table in
//! `idx_patterns_type` order (a random lookup per row), and `GROUP BY type,
//! pattern_data` sorts every row. Here SQLite reads the rows in storage order
//! and evaluates only the comparisons whose meaning depends on SQLite's type
//! rules (tiers, time thresholds, the pruning criteria) as one small integer
//! per row; the grouping by type and category and the duplicate count happen
//! in memory: a handful of groups, and a 128-bit hash per row.

use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use xxhash_rust::xxh3::xxh3_128;

use super::groups::{number, Groups};
use super::last_pass::earliest;
use super::pattern_clock::{starts_before, stops_after, type_label, Flip, FlipKind};
use super::patterns::TypeStats;
use crate::config::PruneConfig;

/// Column 5 is the tier index (0-4 as in `TIERS`, 5 for low); column 6 holds
/// one bit per yes/no figure, see [`Flag`].
const SCAN: &str = "
SELECT type, category, pattern_data, confidence, usage_count,
  CASE WHEN confidence >= 0.9 THEN 0 WHEN confidence >= 0.8 THEN 1 WHEN confidence >= 0.7 THEN 2
       WHEN confidence >= 0.6 THEN 3 WHEN confidence >= 0.5 THEN 4 ELSE 5 END,
  ((last_used > ?1) IS TRUE)
  + 2 * (((last_used < ?2 AND usage_count < ?4)
          OR (confidence < ?5 AND last_used IS NULL)
          OR (created_at < ?3 AND usage_count = 0)) IS TRUE)
  + 4 * ((confidence < 0 OR confidence > 1 OR usage_count < 0 OR created_at IS NULL) IS TRUE)
  + 8 * ((usage_count > 10) IS TRUE)
  + 16 * ((usage_count <= 2) IS TRUE)
  + 32 * ((last_used >= ?2 AND usage_count < ?4) IS TRUE)
  + 64 * ((created_at >= ?3 AND usage_count = 0) IS TRUE),
  last_used, created_at
FROM patterns";

/// The bits of the scan's flags column.
#[derive(Clone, Copy)]
enum Flag {
    /// Used within the last hour.
    Recent = 1,
    /// Matches any of the pruning criteria.
    Prune = 2,
    /// Confidence outside [0,1], negative usage or no created_at.
    Invalid = 4,
    Hot = 8,
    Cold = 16,
    /// Not yet prune criterion 1, but will be when `last_used` ages past
    /// `unused_after`.
    UnusedSoon = 32,
    /// Not yet criterion 3, but will be when `created_at` ages past
    /// `never_used_after`.
    NeverUsedSoon = 64,
}

/// What one pass over the table found, groups not yet bounded.
#[derive(Debug, Default)]
pub struct Scan {
    /// Sums per pattern type (label value; NULL and empty are `none`).
    pub types: Vec<(String, TypeStats)>,
    /// Patterns per category (label value).
    pub categories: Vec<(String, f64)>,
    /// Patterns that share their type and pattern_data with another.
    pub duplicates: f64,
    /// The rows whose recently-used or prune figure changes later with the
    /// clock alone, by the second they do; `None` when some row's time is
    /// text without an exact second (see [`super::pattern_clock`]): the
    /// figures are then read anew at every pass.
    pub flips: Option<Vec<Flip>>,
    /// The type labels the flips name.
    pub flip_types: Vec<String>,
}

impl Scan {
    /// The per-type sums at unix second `now` (at or after the scan), by
    /// label (NULL and empty are both `none`), the flips due by then applied.
    pub fn types_at(&self, now: i64) -> Vec<(String, TypeStats)> {
        let mut types: std::collections::BTreeMap<String, TypeStats> = Default::default();
        for (ty, s) in &self.types {
            types.entry(ty.clone()).or_default().add(s);
        }
        for f in self.flips.iter().flatten().filter(|f| f.at <= now) {
            let label = self.flip_types.get(f.ty as usize);
            let Some(s) = label.and_then(|l| types.get_mut(l)) else {
                continue;
            };
            match f.kind {
                FlipKind::LeavesRecent => {
                    s.recent -= 1.0;
                    s.recent_usage -= f.usage;
                }
                FlipKind::BecomesPrune => s.prune += 1.0,
            }
        }
        types.into_iter().collect()
    }
}

/// Appends `v` to `buf` so that two pairs encode alike exactly when SQLite's
/// GROUP BY puts them in one group: NULLs together, integers and reals by
/// numeric value (1 = 1.0, -0.0 = 0.0), text and blobs by their bytes and
/// never with each other. Lengths are encoded, so pairs cannot run together.
fn encode_group_value(buf: &mut Vec<u8>, v: ValueRef<'_>) {
    let bytes = |buf: &mut Vec<u8>, tag: u8, b: &[u8]| {
        buf.push(tag);
        buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
        buf.extend_from_slice(b);
    };
    match v {
        ValueRef::Null => buf.push(0),
        ValueRef::Integer(i) if (i as f64) as i64 == i => {
            bytes(buf, 1, &(i as f64 + 0.0).to_bits().to_le_bytes())
        }
        ValueRef::Integer(i) => bytes(buf, 4, &i.to_le_bytes()),
        ValueRef::Real(r) => bytes(buf, 1, &(r + 0.0).to_bits().to_le_bytes()),
        ValueRef::Text(t) => bytes(buf, 2, t),
        ValueRef::Blob(b) => bytes(buf, 3, b),
    }
}

/// `datetime(now - ago, 'unixepoch')`: the text SQLite compares with.
fn threshold(conn: &Connection, now: i64, ago: i64) -> rusqlite::Result<String> {
    conn.query_row(
        "SELECT datetime(?1, 'unixepoch')",
        [now.saturating_sub(ago)],
        |r| r.get(0),
    )
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Reads every pattern once, with thresholds at unix second `now`; see the
/// module docs.
pub fn scan(conn: &Connection, prune: &PruneConfig, now: i64) -> rusqlite::Result<Scan> {
    let (hour, unused, never_used) = (
        3600,
        seconds(prune.unused_after),
        seconds(prune.never_used_after),
    );
    let mut stmt = conn.prepare(SCAN)?;
    let params = rusqlite::params![
        threshold(conn, now, hour)?,
        threshold(conn, now, unused)?,
        threshold(conn, now, never_used)?,
        prune.unused_max_usage,
        prune.low_confidence
    ];
    let mut rows = stmt.query(params)?;
    let mut types: Groups<TypeStats> = Groups::default();
    let mut categories: Groups<f64> = Groups::default();
    let mut hashes: Vec<u128> = Vec::new();
    let mut key = Vec::new();
    let mut flips = Some(Vec::new());
    let mut flip_types: Vec<String> = Vec::new();
    let mut flip_index: std::collections::HashMap<String, u32> = Default::default();
    while let Some(row) = rows.next()? {
        let ty = row.get_ref(0)?;
        *categories.get(row.get_ref(1)?) += 1.0;
        key.clear();
        encode_group_value(&mut key, ty);
        encode_group_value(&mut key, row.get_ref(2)?);
        hashes.push(xxh3_128(&key));
        let confidence = number(row.get_ref(3)?);
        let usage = number(row.get_ref(4)?);
        let tier: i64 = row.get(5)?;
        let flags: i64 = row.get(6)?;
        let on = |f: Flag| if flags & f as i64 != 0 { 1.0 } else { 0.0 };
        if let Some(list) = flips.as_mut() {
            let (last_used, created_at) = (row.get_ref(7)?, row.get_ref(8)?);
            let recent_ends = if on(Flag::Recent) > 0.0 {
                stops_after(last_used, hour)
            } else {
                Ok(None)
            };
            let prune_starts = if on(Flag::Prune) > 0.0 {
                Ok(None)
            } else {
                let unused_at = if on(Flag::UnusedSoon) > 0.0 {
                    starts_before(last_used, unused)
                } else {
                    Ok(None)
                };
                let never_at = if on(Flag::NeverUsedSoon) > 0.0 {
                    starts_before(created_at, never_used)
                } else {
                    Ok(None)
                };
                unused_at.and_then(|a| never_at.map(|b| earliest(a, b)))
            };
            match (recent_ends, prune_starts) {
                (Ok(None), Ok(None)) => {}
                (Ok(recent), Ok(prune)) => {
                    let label = type_label(ty);
                    let index = *flip_index.entry(label).or_insert_with_key(|label| {
                        flip_types.push(label.clone());
                        (flip_types.len() - 1) as u32
                    });
                    let flip = |at, kind| Flip {
                        at,
                        usage,
                        ty: index,
                        kind,
                    };
                    list.extend(recent.map(|at| flip(at, FlipKind::LeavesRecent)));
                    list.extend(prune.map(|at| flip(at, FlipKind::BecomesPrune)));
                }
                _ => flips = None,
            }
        }
        let s = types.get(ty);
        s.count += 1.0;
        if let Some(t) = usize::try_from(tier).ok().and_then(|i| s.tiers.get_mut(i)) {
            *t += 1.0;
        }
        s.confidence_sum += confidence;
        s.usage_sum += usage;
        s.hot += on(Flag::Hot);
        s.cold += on(Flag::Cold);
        s.recent += on(Flag::Recent);
        s.recent_usage += on(Flag::Recent) * usage;
        s.prune += on(Flag::Prune);
        s.invalid += on(Flag::Invalid);
    }
    drop(rows);
    Ok(Scan {
        types: types.into_labelled(),
        categories: categories.into_labelled(),
        duplicates: duplicates(hashes),
        flips,
        flip_types,
    })
}

/// Rows whose hash occurs more than once, counted with one sort.
fn duplicates(mut hashes: Vec<u128>) -> f64 {
    hashes.sort_unstable();
    let mut total = 0.0;
    for run in hashes.chunk_by(|a, b| a == b) {
        if run.len() > 1 {
            total += run.len() as f64;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: ValueRef<'_>, b: ValueRef<'_>) -> Vec<u8> {
        let mut k = Vec::new();
        encode_group_value(&mut k, a);
        encode_group_value(&mut k, b);
        k
    }

    #[test]
    fn group_keys_follow_sqlites_grouping() {
        let t = |s: &'static str| ValueRef::Text(s.as_bytes());
        assert_eq!(
            key(t("a"), ValueRef::Integer(1)),
            key(t("a"), ValueRef::Real(1.0))
        );
        assert_eq!(
            key(t("a"), ValueRef::Real(-0.0)),
            key(t("a"), ValueRef::Integer(0))
        );
        assert_ne!(key(t("a"), t("1")), key(t("a"), ValueRef::Integer(1)));
        assert_ne!(key(t("a"), t("x")), key(t("a"), ValueRef::Blob(b"x")));
        assert_ne!(key(t("ab"), t("c")), key(t("a"), t("bc")));
        assert_ne!(key(ValueRef::Null, t("")), key(t(""), t("")));
    }

    #[test]
    fn duplicates_count_every_member_of_a_repeated_group() {
        assert_eq!(duplicates(vec![1, 2, 2, 3, 3, 3]), 5.0);
        assert_eq!(duplicates(vec![1, 2, 3]), 0.0);
    }
}
