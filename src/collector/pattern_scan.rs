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
use super::patterns::TypeStats;
use crate::config::PruneConfig;
use crate::store::sqlite::datetime_ago;

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
    /// The first unix second at which a clock-dependent figure (recently
    /// used, prune candidates) may differ; `None`: never without a write.
    pub until: Option<i64>,
}

/// The smallest text value of a column among the rows a clock-dependent
/// condition holds for, and how long after it the condition flips.
struct Edge {
    after: Duration,
    least: Option<Vec<u8>>,
}

impl Edge {
    fn new(after: Duration) -> Self {
        Self { after, least: None }
    }

    /// Text only: SQLite orders every number before text and every blob
    /// after it, so neither ever crosses a text threshold.
    fn see(&mut self, v: ValueRef<'_>) {
        if let ValueRef::Text(t) = v {
            if self.least.as_deref().is_none_or(|l| t < l) {
                self.least = Some(t.to_vec());
            }
        }
    }

    /// The first second the threshold `datetime('now', -after)` can reach
    /// the least value. Thresholds are `YYYY-MM-DD HH:MM:SS` text, so for a
    /// value whose first 19 characters are such a time `s`, no threshold
    /// before `s` is at or past it: `s + after` is never late. Any other text
    /// gives no such bound, and the figures are recomputed at every pass.
    fn moment(&self, conn: &Connection) -> rusqlite::Result<Option<i64>> {
        let Some(least) = &self.least else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(least);
        let start: Option<i64> = conn.query_row(
            "SELECT CASE WHEN datetime(substr(?1, 1, 19)) = substr(?1, 1, 19)
                    THEN unixepoch(substr(?1, 1, 19)) END",
            [text.as_ref()],
            |r| r.get(0),
        )?;
        let after = i64::try_from(self.after.as_secs()).unwrap_or(i64::MAX);
        Ok(Some(start.map_or(0, |s| s.saturating_add(after))))
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

/// Reads every pattern once; see the module docs.
pub fn scan(conn: &Connection, prune: &PruneConfig) -> rusqlite::Result<Scan> {
    let hour_ago = datetime_ago(conn, Duration::from_secs(3600))?;
    let unused_before = datetime_ago(conn, prune.unused_after)?;
    let never_used_before = datetime_ago(conn, prune.never_used_after)?;
    let mut stmt = conn.prepare(SCAN)?;
    let params = rusqlite::params![
        hour_ago,
        unused_before,
        never_used_before,
        prune.unused_max_usage,
        prune.low_confidence
    ];
    let mut rows = stmt.query(params)?;
    let mut types: Groups<TypeStats> = Groups::default();
    let mut categories: Groups<f64> = Groups::default();
    let mut hashes: Vec<u128> = Vec::new();
    let mut key = Vec::new();
    let mut recent_edge = Edge::new(Duration::from_secs(3600));
    let mut unused_edge = Edge::new(prune.unused_after);
    let mut never_used_edge = Edge::new(prune.never_used_after);
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
        if flags & (Flag::Recent as i64 | Flag::UnusedSoon as i64) != 0 {
            let last_used = row.get_ref(7)?;
            if on(Flag::Recent) > 0.0 {
                recent_edge.see(last_used);
            }
            if on(Flag::UnusedSoon) > 0.0 {
                unused_edge.see(last_used);
            }
        }
        if on(Flag::NeverUsedSoon) > 0.0 {
            never_used_edge.see(row.get_ref(8)?);
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
    let mut until = None;
    for edge in [recent_edge, unused_edge, never_used_edge] {
        until = earliest(until, edge.moment(conn)?);
    }
    Ok(Scan {
        types: types.into_labelled(),
        categories: categories.into_labelled(),
        duplicates: duplicates(hashes),
        until,
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
