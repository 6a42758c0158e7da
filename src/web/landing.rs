//! The landing page: what an engineer opening caretaker's port wants to see.
//! Anyone who reaches the port may read it, so it shows health only: the job
//! history needs the token (docs/security.md) and is only linked from here.
//!
//! Every figure comes from the collectors' snapshot, the same values
//! `/metrics` shows (each cell carries the raw value in a `data-` attribute),
//! so the page costs no query and cannot disagree with Prometheus.

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::Html;

use super::sparkline::sparkline;
use super::{escape, AppState};
use crate::backups::drill::DrillSource;
use crate::metrics::{unix_seconds, SizePoint, Snapshot, SourceKey};

pub async fn page(State(state): State<Arc<AppState>>) -> Html<String> {
    let runtime = &state.runtime;
    let config = runtime.config();
    let snapshot = runtime.snapshot();
    let now = SystemTime::now();
    let mut rows = String::new();
    for db in &config.databases {
        let figures = Figures::of(snapshot, &db.name, db.backup.is_some());
        rows.push_str(&row(&db.name, &db.path, &figures, now));
    }
    let mut collectors = String::new();
    for (key, status) in snapshot.statuses() {
        let (class, text) = if status.ok {
            ("up", "ok")
        } else {
            ("down", "failing")
        };
        let _ = write!(
            collectors,
            "<tr class=\"collector\"><td>{}</td><td>{}</td><td class=\"{class}\">{text}</td><td>{:.3} s</td></tr>",
            escape(key.collector),
            escape(key.database.as_deref().unwrap_or("(host)")),
            status.duration.as_secs_f64(),
        );
    }
    let ready = if runtime.ready() { "ready" } else { "starting" };
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>caretaker</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: .3em .8em; text-align: left; }}
.up {{ color: #176f2c; font-weight: bold; }} .down {{ color: #b00020; font-weight: bold; }} .pending {{ color: #8a6d00; }}
</style></head>
<body>
<h1>caretaker</h1>
<p>Version <span id="version">{version}</span>, <span id="state">{ready}</span>. Configuration: <code>{source}</code>.</p>
<h2>Databases</h2>
<table id="databases"><tr><th>name</th><th>path</th><th>state</th><th>size</th><th>newest backup</th><th>last restore drill</th><th>last hour: file (green), WAL (blue)</th></tr>{rows}</table>
<h2>Collectors</h2>
<table id="collectors"><tr><th>collector</th><th>database</th><th>last run</th><th>duration</th></tr>{collectors}</table>
<h2>Actions</h2>
<p id="actions">Run counts and outcomes are in <a href="/metrics">/metrics</a> (<code>caretaker_action_runs_total</code>). The job history is at <a href="/api/v1/actions">/api/v1/actions</a> and the audit at <a href="/api/v1/audit">/api/v1/audit</a>, with the bearer token of <code>web.token_file</code>.</p>
<p><a href="/metrics">Metrics</a> · <a href="/runbooks">Runbooks</a> (what each alert means, what to do) · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
</body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        source = escape(&config.source.display().to_string()),
    ))
}

/// The newest backup as the backups collector saw it.
enum NewestBackup {
    NotConfigured,
    NotCollected,
    None,
    /// Unix seconds.
    At(f64),
}

/// What one database's row shows.
struct Figures {
    up: Option<bool>,
    size_bytes: Option<f64>,
    backup: NewestBackup,
    /// Each drilled source's last result and when it finished (Unix seconds).
    drills: Vec<(DrillSource, bool, f64)>,
    trend: Vec<SizePoint>,
}

impl Figures {
    fn of(snapshot: &Snapshot, database: &str, backup_configured: bool) -> Figures {
        let db = SourceKey::new("database", Some(database));
        let backups = SourceKey::new("backups", Some(database));
        let backup = if !backup_configured {
            NewestBackup::NotConfigured
        } else if snapshot.status(&backups).is_none() {
            NewestBackup::NotCollected
        } else {
            snapshot
                .value(
                    &backups,
                    "caretaker_backup_last_success_timestamp_seconds",
                    &[],
                )
                .map_or(NewestBackup::None, NewestBackup::At)
        };
        let drills = DrillSource::ALL
            .iter()
            .filter_map(|&source| {
                let labels = [("source", source.as_str())];
                let ok = snapshot.value(&backups, "caretaker_restore_drill_success", &labels)?;
                let at = snapshot.value(
                    &backups,
                    "caretaker_restore_drill_timestamp_seconds",
                    &labels,
                )?;
                Some((source, ok >= 1.0, at))
            })
            .collect();
        Figures {
            up: snapshot
                .value(&db, "caretaker_database_up", &[])
                .map(|v| v >= 1.0),
            size_bytes: snapshot.value(&db, "caretaker_database_size_bytes", &[]),
            backup,
            drills,
            trend: snapshot.size_trend(database),
        }
    }
}

fn ago(at: f64, now: SystemTime) -> String {
    let seconds = (unix_seconds(now) - at).max(0.0);
    format!(
        "{} ago",
        humantime::format_duration(Duration::from_secs(seconds as u64))
    )
}

/// One database's row; every name and path escaped.
fn row(name: &str, path: &Path, f: &Figures, now: SystemTime) -> String {
    let (class, text) = match f.up {
        Some(true) => ("up", "up"),
        Some(false) => ("down", "down"),
        None => ("pending", "not collected yet"),
    };
    let size = match f.size_bytes {
        Some(b) => format!(
            "<td class=\"size\" data-bytes=\"{b}\">{:.1} MiB</td>",
            b / 1_048_576.0
        ),
        None => "<td class=\"size\">-</td>".to_string(),
    };
    let backup = match f.backup {
        NewestBackup::NotConfigured => "<td class=\"backup\">not configured</td>".to_string(),
        NewestBackup::NotCollected => {
            "<td class=\"backup pending\">not listed yet</td>".to_string()
        }
        NewestBackup::None => "<td class=\"backup down\">none</td>".to_string(),
        NewestBackup::At(t) => format!(
            "<td class=\"backup\" data-timestamp=\"{t}\">{}</td>",
            ago(t, now)
        ),
    };
    let mut drills = String::new();
    for (source, ok, at) in &f.drills {
        let (class, result) = if *ok {
            ("up", "ok")
        } else {
            ("down", "failed")
        };
        let _ = write!(
            drills,
            "<span class=\"drill {class}\" data-source=\"{s}\" data-timestamp=\"{at}\">{s} {result}, {}</span> ",
            ago(*at, now),
            s = source.as_str(),
        );
    }
    if drills.is_empty() {
        drills.push_str("never");
    }
    format!(
        "<tr class=\"database\" data-database=\"{n}\"><td>{n}</td><td><code>{p}</code></td><td class=\"{class}\">{text}</td>{size}{backup}<td class=\"drills\">{d}</td><td>{spark}</td></tr>",
        n = escape(name),
        p = escape(&path.display().to_string()),
        d = drills.trim_end(),
        spark = sparkline(name, &f.trend, now),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_path_is_escaped() {
        let figures = Figures {
            up: Some(true),
            size_bytes: Some(4096.0),
            backup: NewestBackup::At(unix_seconds(SystemTime::now()) - 120.0),
            drills: vec![(DrillSource::Local, false, 0.0)],
            trend: Vec::new(),
        };
        let name = "<img src=x onerror=alert(1)>\"'&";
        let html = row(name, Path::new("/srv/<db>.db"), &figures, SystemTime::now());
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<db>"), "{html}");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"),
            "{html}"
        );
        assert!(html.contains("data-bytes=\"4096\""), "{html}");
        assert!(
            html.contains(">2m ago<") || html.contains(">2m 1s ago<"),
            "{html}"
        );
        assert!(
            html.contains("drill down\" data-source=\"local\""),
            "{html}"
        );
    }
}
