//! The last hour of each database's file and WAL sizes, for the landing
//! page's sparklines: a person who has no Grafana still sees the shape of
//! things (a WAL that only grows, a file that doubled).
//!
//! Filled from the database collector's sets as the [`Snapshot`] records
//! them, so nothing is queried twice. Bounded twice: points older than
//! [`WINDOW`] are dropped, and points closer together than
//! `WINDOW / MAX_POINTS` replace the newest instead of adding one, so a
//! one-second collection interval keeps [`MAX_POINTS`] points (a few KB per
//! database), not 3,600, and the page stays small.
//!
//! [`Snapshot`]: super::Snapshot

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use super::{MetricSet, SourceKey};

/// How far back a sparkline goes.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// The most points kept per database (one every 15 s over the hour).
pub const MAX_POINTS: usize = 240;

/// The collector whose sets carry the sizes (`collector::database`).
const SOURCE: &str = "database";

/// One collection's sizes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizePoint {
    pub at: SystemTime,
    pub size_bytes: f64,
    pub wal_bytes: f64,
}

/// One database's points, oldest first.
#[derive(Debug, Default, Clone)]
pub struct SizeTrend {
    points: VecDeque<SizePoint>,
}

impl SizeTrend {
    /// Adds `p`, the newest point, keeping the bounds of the module docs.
    pub fn push(&mut self, p: SizePoint) {
        let spacing = WINDOW / MAX_POINTS as u32;
        let n = self.points.len();
        // Too close to the point before the newest (or the clock went
        // back): `p` replaces the newest, so the last point is always fresh.
        let close = n >= 2
            && p.at
                .duration_since(self.points[n - 2].at)
                .map_or(true, |d| d < spacing);
        if close {
            self.points[n - 1] = p;
        } else {
            self.points.push_back(p);
        }
        while let Some(front) = self.points.front() {
            let old = p.at.duration_since(front.at).is_ok_and(|d| d > WINDOW);
            if !old && self.points.len() <= MAX_POINTS {
                break;
            }
            self.points.pop_front();
        }
    }

    pub fn points(&self) -> Vec<SizePoint> {
        self.points.iter().copied().collect()
    }
}

/// Every database's trend, by name.
#[derive(Debug, Default)]
pub struct SizeTrends(BTreeMap<String, SizeTrend>);

impl SizeTrends {
    /// Takes the sizes from a set the database collector returned; other
    /// sources, failed collections and a missing file add no point.
    pub fn note(&mut self, key: &SourceKey, set: Option<&MetricSet>, now: SystemTime) {
        let (Some(database), Some(set)) = (&key.database, set) else {
            return;
        };
        if key.collector != SOURCE {
            return;
        }
        let Some(size_bytes) = set.value("caretaker_database_size_bytes", &[]) else {
            return;
        };
        let wal_bytes = set
            .value("caretaker_database_wal_size_bytes", &[])
            .unwrap_or(0.0);
        self.0.entry(database.clone()).or_default().push(SizePoint {
            at: now,
            size_bytes,
            wal_bytes,
        });
    }

    pub fn of(&self, database: &str) -> Vec<SizePoint> {
        self.0
            .get(database)
            .map(SizeTrend::points)
            .unwrap_or_default()
    }

    /// Forgets databases that are no longer configured.
    pub fn retain(&mut self, names: &[String]) {
        self.0.retain(|name, _| names.contains(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
    }

    fn point(seconds: u64, size: f64) -> SizePoint {
        SizePoint {
            at: at(seconds),
            size_bytes: size,
            wal_bytes: 0.0,
        }
    }

    #[test]
    fn a_second_by_second_hour_keeps_at_most_max_points_and_the_newest() {
        let mut trend = SizeTrend::default();
        for s in 0..7200 {
            trend.push(point(s, s as f64));
        }
        let points = trend.points();
        assert!(points.len() <= MAX_POINTS, "{}", points.len());
        assert!(points.len() >= MAX_POINTS - 2, "{}", points.len());
        assert_eq!(points.last().map(|p| p.size_bytes), Some(7199.0));
        let oldest = points[0].at;
        assert!(at(7199).duration_since(oldest).expect("order") <= WINDOW);
        assert!(points.windows(2).all(|w| w[0].at < w[1].at));
    }

    #[test]
    fn points_older_than_the_window_go_and_a_clock_going_back_adds_none() {
        let mut trend = SizeTrend::default();
        trend.push(point(0, 1.0));
        trend.push(point(100, 2.0));
        trend.push(point(200, 3.0));
        trend.push(point(3700, 4.0));
        let sizes: Vec<f64> = trend.points().iter().map(|p| p.size_bytes).collect();
        assert_eq!(sizes, vec![2.0, 3.0, 4.0]);
        trend.push(point(50, 5.0));
        let sizes: Vec<f64> = trend.points().iter().map(|p| p.size_bytes).collect();
        assert_eq!(sizes, vec![2.0, 3.0, 5.0]);
    }

    #[test]
    fn only_the_database_collectors_successful_sets_with_a_size_count() {
        let mut trends = SizeTrends::default();
        let mut set = MetricSet::new();
        set.gauge("caretaker_database_size_bytes", "h", vec![], 4096.0);
        set.gauge("caretaker_database_wal_size_bytes", "h", vec![], 8.0);
        let db = SourceKey::new("database", Some("memory"));
        trends.note(&db, Some(&set), at(0));
        trends.note(&db, None, at(20));
        trends.note(
            &SourceKey::new("patterns", Some("memory")),
            Some(&set),
            at(40),
        );
        trends.note(
            &SourceKey::new("database", Some("other")),
            Some(&MetricSet::new()),
            at(40),
        );
        assert_eq!(
            trends.of("memory"),
            vec![SizePoint {
                at: at(0),
                size_bytes: 4096.0,
                wal_bytes: 8.0
            }]
        );
        assert!(trends.of("other").is_empty());
        trends.retain(&["other".to_string()]);
        assert!(trends.of("memory").is_empty());
    }
}
