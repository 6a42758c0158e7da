//! The patterns figures that move with the clock alone: a pattern leaves
//! "used within the last hour", or becomes a prune candidate, while its row
//! stays the same. A scan notes, for every row that will flip, the unix
//! second it does ([`Flip`]); while the file is unchanged the collector
//! applies the flips that are due to the scan's sums instead of reading the
//! table again, and publishes exactly what a new scan would.
//!
//! Exactness comes from the way SQLite compares: the thresholds are
//! `datetime(T - d, 'unixepoch')`, text `YYYY-MM-DD HH:MM:SS`, compared with
//! the column by bytes. For a value whose first 19 bytes `p` are such a time
//! (the form SQLite writes, [`canonical`]) at unix second `P`:
//! `v > threshold` holds while `T < P + d` when `v` is `p` alone, and while
//! `T <= P + d` when `v` is longer (`p` then sorts before `v`); `v <
//! threshold` holds from `T = P + d + 1` either way. Numbers sort before
//! text and blobs after it, so neither ever crosses a text threshold. Any
//! other text (another format, a trailing blank that an `RTRIM` collation
//! would ignore) has no such bound: the scan then says it cannot be carried
//! forward, and the table is read at every pass, as before.

use rusqlite::types::ValueRef;

/// What a pattern's row does at [`Flip::at`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlipKind {
    /// No longer used within the last hour: `recent` and its usage go.
    LeavesRecent,
    /// Starts to match a pruning criterion (it matched none).
    BecomesPrune,
}

/// One row's clock-driven change (24 bytes: a scan of a busy table keeps
/// one per recently used pattern, for every database of a fleet).
#[derive(Debug, Clone, PartialEq)]
pub struct Flip {
    /// The first unix second at which the change shows.
    pub at: i64,
    pub usage: f64,
    /// The row's type label, as an index into the scan's list of them.
    pub ty: u32,
    pub kind: FlipKind,
}

/// The unix second of `v`'s first 19 bytes, and whether more bytes follow,
/// when those bytes are a time as SQLite's `datetime()` writes it; `None`
/// for anything else, trailing blanks included.
pub fn canonical(v: &[u8]) -> Option<(i64, bool)> {
    let head = v.get(..19)?;
    let rest = &v[19..];
    if rest.first() == Some(&b' ') || rest.last() == Some(&b' ') {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let t = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()?;
    (t.format("%Y-%m-%d %H:%M:%S").to_string() == text)
        .then(|| (t.and_utc().timestamp(), !rest.is_empty()))
}

/// A time stored as text in a form with no exact second (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoExactSecond;

/// When a value now greater than the threshold `d` seconds back stops
/// being so; [`NoExactSecond`] when no exact second can be given. Numbers
/// never are greater; blobs always are (`Ok(None)`).
pub fn stops_after(v: ValueRef<'_>, d: i64) -> Result<Option<i64>, NoExactSecond> {
    match v {
        ValueRef::Text(t) => {
            let (p, longer) = canonical(t).ok_or(NoExactSecond)?;
            Ok(Some(p.saturating_add(d).saturating_add(i64::from(longer))))
        }
        _ => Ok(None),
    }
}

/// When a value not yet less than the threshold `d` seconds back becomes
/// so; [`NoExactSecond`] when no exact second can be given, `Ok(None)` for
/// never.
pub fn starts_before(v: ValueRef<'_>, d: i64) -> Result<Option<i64>, NoExactSecond> {
    match v {
        ValueRef::Text(t) => {
            let (p, _) = canonical(t).ok_or(NoExactSecond)?;
            Ok(Some(p.saturating_add(d).saturating_add(1)))
        }
        _ => Ok(None),
    }
}

/// The type label Groups gives `v` (see [`super::groups::Groups`]).
pub fn type_label(v: ValueRef<'_>) -> String {
    let text = match v {
        ValueRef::Null => None,
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(r) => Some(r.to_string()),
    };
    super::labels::label_value(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::pattern_scan::scan;
    use crate::config::PruneConfig;

    /// Rows on every side of every threshold, in both of SQLite's forms,
    /// with blobs, numbers and NULLs: a scan carried forward second by
    /// second says what a new scan at that second says.
    #[test]
    fn a_scan_carried_forward_matches_a_new_scan_at_every_second() {
        let t0: i64 = 1_800_000_000;
        let conn = rusqlite::Connection::open_in_memory().expect("db");
        conn.execute_batch(
            "CREATE TABLE patterns (id INTEGER PRIMARY KEY, type TEXT, category TEXT,
               pattern_data TEXT, confidence REAL, usage_count INTEGER, last_used, created_at)",
        )
        .expect("table");
        let mut insert = conn
            .prepare(
                "INSERT INTO patterns (type, category, pattern_data, confidence, usage_count, last_used, created_at)
                 VALUES (?1, 'c', 'd', ?2, ?3, datetime(?4, 'unixepoch') || ?5, datetime(?6, 'unixepoch') || ?5)",
            )
            .expect("insert");
        for k in -3i64..=40 {
            for (i, suffix) in ["", ".250"].iter().enumerate() {
                let ty: Option<&str> =
                    [Some("a"), Some("b"), None, Some("")][(k.rem_euclid(4)) as usize];
                let usage = (k + i as i64).rem_euclid(4);
                insert
                    .execute(rusqlite::params![
                        ty,
                        0.2 + 0.1 * (k.rem_euclid(8) as f64),
                        usage,
                        t0 - 3600 + k,
                        suffix,
                        t0 - 20 + k,
                    ])
                    .expect("row");
                insert
                    .execute(rusqlite::params![
                        ty,
                        0.5,
                        0,
                        t0 - 10 + k,
                        suffix,
                        t0 - 30 + k
                    ])
                    .expect("row");
            }
        }
        conn.execute_batch(
            "INSERT INTO patterns (type, usage_count, last_used, created_at) VALUES
               ('a', 1, x'00', x'00'), ('b', 0, 12345, 12345), ('a', 0, NULL, NULL);",
        )
        .expect("odd rows");
        let prune = PruneConfig {
            unused_after: std::time::Duration::from_secs(10),
            never_used_after: std::time::Duration::from_secs(20),
            ..PruneConfig::default()
        };
        let first = scan(&conn, &prune, t0).expect("scan");
        let flips = first
            .flips
            .as_ref()
            .expect("every time has an exact second");
        assert!(flips.len() > 100, "{} flips", flips.len());
        for now in t0..=t0 + 60 {
            let fresh = scan(&conn, &prune, now).expect("scan");
            assert_eq!(
                first.types_at(now),
                fresh.types_at(now),
                "at t0 + {}",
                now - t0
            );
            let recent: f64 = fresh.types.iter().map(|(_, s)| s.recent).sum();
            let carried: f64 = first.types_at(now).iter().map(|(_, s)| s.recent).sum();
            assert_eq!(carried, recent, "at t0 + {}", now - t0);
        }
        let moved = |f: fn(&crate::collector::patterns::TypeStats) -> f64| {
            let at = |t| first.types_at(t).iter().map(|(_, s)| f(s)).sum::<f64>();
            at(t0) != at(t0 + 60)
        };
        assert!(
            moved(|s| s.recent) && moved(|s| s.prune),
            "the window crosses thresholds"
        );

        // A time in another form has no exact second: nothing is carried.
        conn.execute(
            "INSERT INTO patterns (type, usage_count, last_used, created_at) VALUES ('a', 1, ?1, ?1)",
            [format!("{}", chrono::DateTime::from_timestamp(t0, 0).expect("t").format("%Y-%m-%dT%H:%M:%S"))],
        )
        .expect("row");
        assert!(scan(&conn, &prune, t0 - 3000)
            .expect("scan")
            .flips
            .is_none());
    }

    #[test]
    fn only_sqlites_own_form_has_an_exact_second() {
        let noon = chrono::NaiveDate::from_ymd_opt(2026, 12, 3)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|t| t.and_utc().timestamp())
            .expect("a time");
        assert_eq!(canonical(b"2026-12-03 12:00:00"), Some((noon, false)));
        assert_eq!(canonical(b"2026-12-03 12:00:00.250"), Some((noon, true)));
        for odd in [
            &b"2026-12-03T12:00:00"[..],
            b"2026-12-3 12:00:00",
            b"2026-02-30 12:00:00",
            b"2026-12-03 12:00:00 ",
            b"2026-12-03 12:00",
            b"yesterday",
        ] {
            assert_eq!(canonical(odd), None, "{}", String::from_utf8_lossy(odd));
        }
    }
}
