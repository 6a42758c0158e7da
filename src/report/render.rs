//! A [`Report`] as Markdown, or as one self-contained HTML file: inline CSS
//! and inline SVG charts, no script and nothing fetched, so it opens from a
//! mail attachment or a file share and prints as it shows.

use std::fmt::Write;

use super::Report;
use crate::web::escape;

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Html,
    Markdown,
}

fn num(v: Option<f64>, places: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.places$}"))
}

fn time(t: f64) -> String {
    humantime::format_rfc3339_seconds(super::at(t)).to_string()
}

fn title(r: &Report) -> String {
    format!(
        "caretaker {}ly report: {} ({} to {})",
        r.period.as_str(),
        r.database,
        time(r.from),
        time(r.to)
    )
}

/// The tables both forms show.
/// One table of a report: its heading, column names and rows of cells.
type Table = (&'static str, Vec<&'static str>, Vec<Vec<String>>);

fn tables(r: &Report) -> Vec<Table> {
    let days = r
        .days
        .iter()
        .map(|d| {
            vec![
                d.date.clone(),
                num(d.ops_per_second, 1),
                format!("{}", d.patterns_added),
                num(d.added_confidence, 3),
                num(d.truth_score, 3),
                format!("{}", d.verifications),
            ]
        })
        .collect();
    let tiers = r
        .tiers
        .iter()
        .map(|(t, n)| vec![t.clone(), format!("{n}")])
        .collect();
    let upkeep = vec![
        vec!["prune candidates".to_string(), num(r.prune_candidates, 0)],
        vec![
            "expired memory entries".to_string(),
            num(r.expired_entries, 0),
        ],
    ];
    let agents = r
        .agents
        .iter()
        .map(|a| {
            vec![
                a.agent.clone(),
                format!("{:.3}", a.truth_score),
                format!("{}", a.verifications),
            ]
        })
        .collect();
    let actions = r
        .actions
        .iter()
        .map(|a| {
            vec![
                a.action.clone(),
                a.succeeded.to_string(),
                a.failed.to_string(),
                a.other.to_string(),
            ]
        })
        .collect();
    let b = &r.backups;
    let backups = if b.configured {
        vec![vec![
            b.taken.to_string(),
            b.verified.to_string(),
            b.bytes.to_string(),
            b.newest.map_or_else(|| "–".to_string(), time),
        ]]
    } else {
        Vec::new()
    };
    let o = &r.offsite;
    let offsite = if o.configured || o.uploaded + o.upload_failures > 0 {
        vec![vec![
            o.uploaded.to_string(),
            o.bytes_uploaded.to_string(),
            o.upload_failures.to_string(),
            o.in_store
                .map_or_else(|| "–".to_string(), |n| n.to_string()),
            o.in_store
                .map_or_else(|| "–".to_string(), |_| o.in_store_bytes.to_string()),
        ]]
    } else {
        Vec::new()
    };
    let d = &r.drills;
    let mut drills: Vec<Vec<String>> = d
        .sources
        .iter()
        .map(|s| {
            let (at, result) = s.last.map_or_else(
                || ("–".to_string(), "–".to_string()),
                |(at, ok)| (time(at), if ok { "passed" } else { "failed" }.to_string()),
            );
            vec![
                s.source.as_str().to_string(),
                s.passed.to_string(),
                "–".to_string(),
                at,
                result,
            ]
        })
        .collect();
    if d.succeeded + d.failed > 0 {
        drills.push(vec![
            "all (restore_drill jobs)".to_string(),
            d.succeeded.to_string(),
            d.failed.to_string(),
            "–".to_string(),
            "–".to_string(),
        ]);
    }
    vec![
        (
            "Per day",
            vec![
                "day",
                "ops/s (avg)",
                "patterns added",
                "their confidence",
                "truth score",
                "verifications",
            ],
            days,
        ),
        ("Confidence tiers now", vec!["tier", "patterns"], tiers),
        ("Upkeep now", vec!["figure", "value"], upkeep),
        (
            "Agents in the period",
            vec!["agent", "truth score", "verifications"],
            agents,
        ),
        (
            "caretaker's jobs in the period",
            vec!["action", "succeeded", "failed", "other"],
            actions,
        ),
        (
            "Backups in the period",
            vec!["taken", "verified", "bytes", "newest"],
            backups,
        ),
        (
            "Offsite copies in the period",
            vec![
                "uploaded",
                "bytes uploaded",
                "failed uploads",
                "in the store",
                "bytes in the store",
            ],
            offsite,
        ),
        (
            "Restore drills in the period",
            vec!["source", "passed", "failed", "last drill", "last result"],
            drills,
        ),
    ]
}

/// Why some figures are missing.
fn notes(r: &Report) -> impl Iterator<Item = &String> {
    r.history_note.iter().chain(r.offsite.note.iter())
}

pub fn markdown(r: &Report) -> String {
    let mut out = format!("# {}\n", title(r));
    for (heading, head, rows) in tables(r) {
        let _ = write!(out, "\n## {heading}\n\n");
        if rows.is_empty() {
            out.push_str("(none)\n");
            continue;
        }
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| c.replace('|', "\\|").replace('\n', " "))
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
    for note in notes(r) {
        let _ = writeln!(out, "\n{note}");
    }
    out
}

/// A line chart of one series per day; days without a value are gaps.
fn line_chart(id: &str, label: &str, values: &[Option<f64>]) -> String {
    let (w, h, pad) = (600.0, 160.0, 30.0);
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let scale = if max > 0.0 {
        (h - 2.0 * pad) / max
    } else {
        0.0
    };
    let step = if values.len() > 1 {
        (w - 2.0 * pad) / (values.len() - 1) as f64
    } else {
        0.0
    };
    let mut points = String::new();
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            let _ = write!(
                points,
                "{:.1},{:.1} ",
                pad + step * i as f64,
                h - pad - v * scale
            );
        }
    }
    format!(
        "<figure><figcaption>{label}</figcaption><svg class=\"chart {id}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{label}\">\
<line x1=\"{pad}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#888\"/>\
<text x=\"2\" y=\"{pad}\" font-size=\"10\">{max:.1}</text><text x=\"2\" y=\"{y0}\" font-size=\"10\">0</text>\
<polyline fill=\"none\" stroke=\"#2a6\" stroke-width=\"2\" points=\"{points}\"/></svg></figure>",
        label = escape(label),
        y0 = h - pad,
        x1 = w - pad,
        points = points.trim_end(),
    )
}

/// A bar chart of the confidence tiers.
fn bar_chart(tiers: &[(String, f64)]) -> String {
    let (w, h, pad) = (600.0, 160.0, 20.0);
    let max = tiers.iter().map(|t| t.1).fold(0.0_f64, f64::max);
    let slot = (w - 2.0 * pad) / tiers.len().max(1) as f64;
    let mut bars = String::new();
    for (i, (tier, n)) in tiers.iter().enumerate() {
        let bh = if max > 0.0 {
            n / max * (h - 3.0 * pad)
        } else {
            0.0
        };
        let x = pad + slot * i as f64;
        let _ = write!(
            bars,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#36a\"><title>{}: {n}</title></rect>\
<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
            h - 2.0 * pad - bh,
            slot * 0.8,
            escape(tier),
            h - pad,
            escape(tier),
        );
    }
    format!("<figure><figcaption>Confidence tiers now</figcaption><svg class=\"chart tiers\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"Confidence tiers\">{bars}</svg></figure>")
}

/// Every report in one document, one section per database.
pub fn html(reports: &[Report]) -> String {
    let page = reports.first().map_or_else(
        || "caretaker report".to_string(),
        |r| format!("caretaker {}ly report", r.period.as_str()),
    );
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
<style>body{{font-family:sans-serif;max-width:50em;margin:1em auto}}table{{border-collapse:collapse;margin:.5em 0}}\
td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
figure{{margin:1em 0;break-inside:avoid}}@media print{{body{{max-width:none}}}}</style></head><body>\n",
        escape(&page)
    );
    for r in reports {
        section(&mut out, r);
    }
    out.push_str("</body></html>\n");
    out
}

fn section(out: &mut String, r: &Report) {
    let _ = write!(
        out,
        "<section data-database=\"{}\">\n<h1>{}</h1>\n",
        escape(&r.database),
        escape(&title(r))
    );
    let series = |f: fn(&super::Day) -> Option<f64>| r.days.iter().map(f).collect::<Vec<_>>();
    out.push_str(&line_chart(
        "ops",
        "Operations per second (daily average)",
        &series(|d| d.ops_per_second),
    ));
    out.push_str(&line_chart(
        "added",
        "Patterns added per day",
        &series(|d| Some(d.patterns_added)),
    ));
    out.push_str(&line_chart(
        "truth",
        "Truth score (daily average)",
        &series(|d| d.truth_score),
    ));
    out.push_str(&bar_chart(&r.tiers));
    for (heading, head, rows) in tables(r) {
        let _ = write!(out, "\n<h2>{}</h2>\n", escape(heading));
        if rows.is_empty() {
            out.push_str("<p>(none)</p>\n");
            continue;
        }
        let _ = write!(out, "<table><tr>");
        for h in head {
            let _ = write!(out, "<th>{}</th>", escape(h));
        }
        out.push_str("</tr>\n");
        for row in rows {
            out.push_str("<tr>");
            for c in row {
                let _ = write!(out, "<td>{}</td>", escape(&c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    for note in notes(r) {
        let _ = writeln!(out, "<p>{}</p>", escape(note));
    }
    out.push_str("</section>\n");
}
