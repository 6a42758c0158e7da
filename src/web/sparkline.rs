//! A database's last hour of file and WAL sizes as a small inline SVG: no
//! script, nothing fetched, so it renders wherever the page does (a
//! terminal browser shows the `<title>` text instead).
//!
//! Two bands, the file above and the WAL below, each scaled from its own
//! least to its greatest value in the hour: a sparkline shows a shape, and a
//! WAL of a few MB beside a file of a few GB would be a flat line on a
//! shared scale. The `<title>` gives the ranges in bytes.

use std::fmt::Write;
use std::time::SystemTime;

use super::escape;
use crate::metrics::trend::WINDOW;
use crate::metrics::SizePoint;

const WIDTH: f64 = 160.0;
/// Height of one band; the SVG is two bands and a gap.
const BAND: f64 = 16.0;
const GAP: f64 = 4.0;

/// The sparkline of `database`'s `points` (oldest first) as of `now`.
pub fn sparkline(database: &str, points: &[SizePoint], now: SystemTime) -> String {
    let size: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (x_of(p.at, now), p.size_bytes))
        .collect();
    let wal: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (x_of(p.at, now), p.wal_bytes))
        .collect();
    let height = 2.0 * BAND + GAP;
    let title = match (range(&size), range(&wal)) {
        (Some((s0, s1)), Some((w0, w1))) => format!(
            "{}: database {} to {} bytes, WAL {} to {} bytes, {} points in the last hour",
            escape(database),
            s0,
            s1,
            w0,
            w1,
            points.len()
        ),
        _ => format!("{}: no sizes collected yet", escape(database)),
    };
    format!(
        "<svg class=\"sparkline\" data-database=\"{name}\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\"><title>{title}</title>\
<polyline class=\"size\" fill=\"none\" stroke=\"#2a6\" stroke-width=\"1.5\" points=\"{s}\"/>\
<polyline class=\"wal\" fill=\"none\" stroke=\"#36c\" stroke-width=\"1.5\" points=\"{w}\"/></svg>",
        name = escape(database),
        s = polyline(&size, 0.0),
        w = polyline(&wal, BAND + GAP),
    )
}

/// Where a point taken at `at` sits: the right edge is now, the left an
/// hour ago; a point from the future (clock change) sits at the right.
fn x_of(at: SystemTime, now: SystemTime) -> f64 {
    let age = now.duration_since(at).unwrap_or_default().min(WINDOW);
    WIDTH * (1.0 - age.as_secs_f64() / WINDOW.as_secs_f64())
}

fn range(values: &[(f64, f64)]) -> Option<(f64, f64)> {
    let mut it = values.iter().map(|v| v.1);
    let first = it.next()?;
    Some(it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
}

/// The `points` attribute of one band whose top is at `top`: the band's
/// least value at its bottom, its greatest at its top, a constant series
/// across the middle.
fn polyline(values: &[(f64, f64)], top: f64) -> String {
    let Some((lo, hi)) = range(values) else {
        return String::new();
    };
    let mut out = String::new();
    for (x, v) in values {
        let y = if hi > lo {
            top + BAND * (hi - v) / (hi - lo)
        } else {
            top + BAND / 2.0
        };
        let _ = write!(out, "{x:.1},{y:.1} ");
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn points_of(svg: &str, class: &str) -> Vec<(f64, f64)> {
        let start = svg.find(&format!("class=\"{class}\"")).expect("polyline");
        let attr = &svg[start..];
        let attr = &attr[attr.find("points=\"").expect("points") + 8..];
        attr[..attr.find('"').expect("end")]
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').expect("x,y");
                (x.parse().expect("x"), y.parse().expect("y"))
            })
            .collect()
    }

    #[test]
    fn a_growing_file_rises_to_the_right_and_a_flat_wal_stays_in_its_band() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let points: Vec<SizePoint> = (0..4)
            .map(|i| SizePoint {
                at: now - Duration::from_secs(900 * (3 - i)),
                size_bytes: 1000.0 * (i + 1) as f64,
                wal_bytes: 64.0,
            })
            .collect();
        let svg = sparkline("memory", &points, now);
        let size = points_of(&svg, "size");
        assert_eq!(size.len(), 4);
        assert_eq!(size[3].0, WIDTH, "the newest point is at the right edge");
        assert_eq!(size[0].0, WIDTH / 4.0);
        assert!(size.windows(2).all(|w| w[1].1 < w[0].1), "{size:?}");
        assert_eq!((size[0].1, size[3].1), (BAND, 0.0));
        let wal = points_of(&svg, "wal");
        assert!(
            wal.iter().all(|p| p.1 == BAND + GAP + BAND / 2.0),
            "{wal:?}"
        );
        assert!(svg.contains("database 1000 to 4000 bytes"), "{svg}");
    }

    #[test]
    fn names_are_escaped_and_no_points_draw_nothing() {
        let svg = sparkline("<b>\"x\"", &[], SystemTime::now());
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;b&gt;&quot;x&quot;"), "{svg}");
        assert!(svg.contains("points=\"\""), "{svg}");
        assert!(!svg.contains("<script"), "{svg}");
    }
}
