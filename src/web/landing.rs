//! The landing page: what an engineer opening caretaker's port wants to see.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::response::Html;

use super::{escape, AppState};
use crate::metrics::SourceKey;
use crate::responder::state::JobFilter;

pub async fn page(State(state): State<Arc<AppState>>) -> Html<String> {
    let runtime = &state.runtime;
    let config = runtime.config();
    let snapshot = runtime.snapshot();
    let mut rows = String::new();
    for db in &config.databases {
        let key = SourceKey::new("database", Some(&db.name));
        let (class, text) = match snapshot.value(&key, "caretaker_database_up", &[]) {
            Some(v) if v >= 1.0 => ("up", "up"),
            Some(_) => ("down", "down"),
            None => ("pending", "not collected yet"),
        };
        let _ = write!(
            rows,
            "<tr class=\"database\" data-database=\"{n}\"><td>{n}</td><td><code>{p}</code></td><td class=\"{class}\">{text}</td></tr>",
            n = escape(&db.name),
            p = escape(&db.path.display().to_string()),
        );
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
    let store = runtime.responder().executor.state.clone();
    let filter = JobFilter {
        limit: 10,
        ..Default::default()
    };
    let jobs = tokio::task::spawn_blocking(move || store.jobs(&filter))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let mut recent = String::new();
    for j in &jobs {
        let at = j.finished_at.or(j.started_at).unwrap_or(j.created_at);
        let when =
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs_f64(at.max(0.0)));
        let class = match j.status.as_str() {
            "succeeded" => "up",
            "failed" | "interrupted" => "down",
            _ => "pending",
        };
        let _ = write!(
            recent,
            "<tr class=\"job\"><td>{when}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
            escape(&j.action),
            escape(&j.database),
            escape(&j.source),
            escape(&j.status),
            escape(j.reason.as_deref().unwrap_or("")),
        );
    }
    if jobs.is_empty() {
        recent.push_str("<tr><td colspan=\"6\">no actions yet</td></tr>");
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
<table id="databases"><tr><th>name</th><th>path</th><th>state</th></tr>{rows}</table>
<h2>Collectors</h2>
<table id="collectors"><tr><th>collector</th><th>database</th><th>last run</th><th>duration</th></tr>{collectors}</table>
<h2>Recent actions</h2>
<table id="actions"><tr><th>time</th><th>action</th><th>database</th><th>source</th><th>status</th><th>reason</th></tr>{recent}</table>
<p><a href="/metrics">Metrics</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
</body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        source = escape(&config.source.display().to_string()),
    ))
}
