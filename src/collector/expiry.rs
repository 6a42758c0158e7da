//! The one activity figure that moves with the clock alone: memory entries
//! past `expires_at`. A pass notes the second each entry still to come
//! expires; while the file is unchanged the count at a later second is the
//! pass's count plus the noted seconds before it, exactly what a new pass
//! would count, without reading the table again (at a thousand databases a
//! re-read at every expiry was most of the activity collector's work).
//!
//! Exactness comes from comparing as the purge action does: an entry has
//! expired at unix second `T` when `datetime(expires_at) < datetime(T,
//! 'unixepoch')`. `datetime()` reads every form SQLite knows (text, Julian
//! day, `'unixepoch'` numbers are not among them) and writes whole seconds,
//! so that holds exactly when the entry's second `E =
//! unixepoch(datetime(expires_at))` is before `T`. An `expires_at` that
//! `datetime()` cannot read never counts, now or later.

use rusqlite::Connection;

/// The most pending seconds kept per database; past them the table is read
/// again when the last kept one is reached (8 KB per database).
pub const KEPT: usize = 1024;

/// What one pass read of `memory_entries`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Expiries {
    /// Entries already expired at the pass's second.
    expired: f64,
    /// The seconds of the first [`KEPT`] entries still to expire, ascending.
    pending: Vec<i64>,
}

impl Expiries {
    /// Reads the table at unix second `now`; with the second from which the
    /// pending list no longer tells the count (`None`: it always does).
    pub fn read(conn: &Connection, now: i64) -> rusqlite::Result<(Expiries, Option<i64>)> {
        let expired = conn.query_row(
            "SELECT TOTAL(datetime(expires_at) < datetime(?1, 'unixepoch'))
             FROM memory_entries WHERE expires_at IS NOT NULL",
            [now],
            |r| r.get::<_, f64>(0),
        )?;
        let mut stmt = conn.prepare(
            "SELECT unixepoch(datetime(expires_at)) AS e FROM memory_entries
             WHERE expires_at IS NOT NULL AND datetime(expires_at) >= datetime(?1, 'unixepoch')
             ORDER BY e LIMIT ?2",
        )?;
        let limit = i64::try_from(KEPT + 1).unwrap_or(i64::MAX);
        let mut pending = stmt
            .query_map([now, limit], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        // One more than kept: the count is right until that entry expires.
        let until = if pending.len() > KEPT {
            pending.pop()
        } else {
            None
        };
        Ok((Expiries { expired, pending }, until))
    }

    /// The entries expired at unix second `now` (at or after the pass's).
    pub fn expired_at(&self, now: i64) -> f64 {
        self.expired + self.pending.partition_point(|&e| e < now) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh_count(conn: &Connection, t: i64) -> f64 {
        conn.query_row(
            "SELECT COUNT(*) FROM memory_entries
             WHERE expires_at IS NOT NULL AND datetime(expires_at) < datetime(?1, 'unixepoch')",
            [t],
            |r| r.get(0),
        )
        .expect("count")
    }

    #[test]
    fn the_count_carried_forward_is_a_fresh_count_at_every_second() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE memory_entries (key TEXT, expires_at)")
            .expect("schema");
        let now = 1_800_000_000_i64;
        // Every form a generator might write, a few seconds apart: text with
        // and without fractions or a zone, Julian days, ISO with a T, junk.
        let mut insert = conn
            .prepare("INSERT INTO memory_entries VALUES ('k', ?1)")
            .expect("prepare");
        for d in -3..12_i64 {
            let t = now + d;
            let forms: Vec<rusqlite::types::Value> = vec![
                conn.query_row("SELECT datetime(?1, 'unixepoch')", [t], |r| r.get(0))
                    .expect("text"),
                conn.query_row("SELECT datetime(?1, 'unixepoch') || '.750'", [t], |r| {
                    r.get(0)
                })
                .expect("fraction"),
                conn.query_row(
                    "SELECT strftime('%Y-%m-%dT%H:%M:%S+01:00', ?1 + 3600, 'unixepoch')",
                    [t],
                    |r| r.get(0),
                )
                .expect("zone"),
                conn.query_row("SELECT julianday(?1, 'unixepoch')", [t], |r| r.get(0))
                    .expect("julian"),
            ];
            for form in forms {
                insert.execute([form]).expect("insert");
            }
        }
        for junk in ["soon", "", "2026-13-45 99:99:99"] {
            insert.execute([junk]).expect("insert");
        }
        insert
            .execute([rusqlite::types::Value::Null])
            .expect("null");
        let (expiries, until) = Expiries::read(&conn, now).expect("read");
        assert_eq!(until, None, "everything kept");
        for t in now..now + 15 {
            assert_eq!(expiries.expired_at(t), fresh_count(&conn, t), "at {t}");
        }
    }

    #[test]
    fn past_the_kept_seconds_the_count_stands_until_the_first_left_out() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE memory_entries (key TEXT, expires_at TEXT)")
            .expect("schema");
        let now = 1_800_000_000_i64;
        let n = i64::try_from(KEPT).expect("kept") + 10;
        conn.execute(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?2)
             INSERT INTO memory_entries SELECT 'k', datetime(?1 + i, 'unixepoch') FROM s",
            [now, n],
        )
        .expect("fill");
        let (expiries, until) = Expiries::read(&conn, now).expect("read");
        let until = until.expect("more than kept");
        assert_eq!(until, now + i64::try_from(KEPT).expect("kept"));
        for t in [now, now + 1, now + 500, until] {
            assert_eq!(expiries.expired_at(t), fresh_count(&conn, t), "at {t}");
        }
    }
}
