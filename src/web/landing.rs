//! The landing page: what an engineer opening caretaker's port wants to see.
//! Anyone who reaches the port may read it, so it shows health only: the job
//! history needs the token (docs/security.md) and is only linked from here.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;

use super::{escape, AppState};
use crate::metrics::SourceKey;

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
<h2>Actions</h2>
<p id="actions">Run counts and outcomes are in <a href="/metrics">/metrics</a> (<code>caretaker_action_runs_total</code>). The job history is at <a href="/api/v1/actions">/api/v1/actions</a> and the audit at <a href="/api/v1/audit">/api/v1/audit</a>, with the bearer token of <code>web.token_file</code>.</p>
<p><a href="/metrics">Metrics</a> · <a href="/runbooks">Runbooks</a> (what each alert means, what to do) · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
</body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        source = escape(&config.source.display().to_string()),
    ))
}
