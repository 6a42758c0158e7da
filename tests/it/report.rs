//! `caretaker report` from the files alone: its figures match plain SQL on
//! the same database (demo rows plus odd ones), the HTML opens in headless
//! Chromium with its charts and nothing fetched, and a report of a place
//! where caretaker never ran says so without creating its state database.

use std::path::Path;
use std::process::Output;

use caretaker::demo::generate::{generate, GenerateOptions};
use rusqlite::Connection;

use crate::common::caretaker;
use crate::http::chromium_dump;

const CONFIG: &str =
    "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n[database.backup]\ndir = \"backups\"\n";

fn run(dir: &Path, args: &[&str]) -> Output {
    let out = caretaker()
        .args(args)
        .arg(format!(
            "--config.file={}",
            dir.join("caretaker.toml").display()
        ))
        .output()
        .expect("run caretaker");
    assert!(
        out.status.success(),
        "caretaker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("memory.db");
    generate(
        &path,
        &GenerateOptions {
            patterns: 2000,
            ..GenerateOptions::default()
        },
    )
    .expect("generate");
    // Rows as other writers leave them: ISO times with T and Z, an empty agent name.
    Connection::open(&path)
        .and_then(|c| {
            c.execute_batch(
                "INSERT INTO patterns (id, type, pattern_data, confidence, usage_count, created_at)
                   VALUES ('iso', 'odd|type', 'x', 0.91, 0, strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-1 day'));
                 INSERT INTO verification_history (id, agent_name, task_id, truth_score, verification_status, timestamp)
                   VALUES ('v-odd', '', 't', 0.5, 'passed', strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-2 days'));",
            )
        })
        .expect("odd rows");
    std::fs::write(dir.path().join("caretaker.toml"), CONFIG).expect("config");
    dir
}

/// (day, count, average confidence) of patterns created in the last 7 days, by plain SQL.
fn added_by_day(db: &Path) -> Vec<(String, i64, f64)> {
    let conn = Connection::open(db).expect("open");
    let mut stmt = conn
        .prepare(
            "SELECT date(created_at), COUNT(*), AVG(confidence) FROM patterns
             WHERE datetime(created_at) >= datetime('now', '-7 days') GROUP BY 1",
        )
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

fn count(db: &Path, sql: &str) -> i64 {
    Connection::open(db)
        .expect("open")
        .query_row(sql, [], |r| r.get(0))
        .expect("count")
}

#[test]
fn the_markdown_report_says_what_plain_sql_says() {
    let dir = setup();
    let db = dir.path().join("memory.db");
    // No history yet: the report says so and creates no state database.
    let out = run(dir.path(), &["report", "--period=week"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("no history:"), "{text}");
    assert!(!dir.path().join("caretaker-state.db").exists());
    assert!(std::fs::read_dir(dir.path()).expect("dir").all(|e| !e
        .expect("e")
        .file_name()
        .to_string_lossy()
        .contains("state")));

    run(dir.path(), &["run", "backup", "--database=memory"]);
    let out = run(
        dir.path(),
        &["report", "--period=week", "--format=markdown"],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let added = added_by_day(&db);
    assert!(added.len() >= 5, "patterns on most days: {added:?}");
    for (day, n, conf) in &added {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {day} |")))
            .unwrap_or_else(|| panic!("no row for {day} in {text}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[3], n.to_string(), "{row}");
        assert_eq!(cells[4], format!("{conf:.3}"), "{row}");
    }
    let tier = |name: &str, sql: &str| {
        let row = format!("| {name} | {} |", count(&db, sql));
        assert!(text.contains(&row), "{row} in {text}");
    };
    tier(
        "excellent",
        "SELECT COUNT(*) FROM patterns WHERE confidence >= 0.9",
    );
    tier(
        "low",
        "SELECT COUNT(*) FROM patterns WHERE confidence < 0.5",
    );
    let expired = count(
        &db,
        "SELECT COUNT(*) FROM memory_entries WHERE expires_at IS NOT NULL AND datetime(expires_at) < datetime('now')",
    );
    assert!(expired > 0);
    assert!(
        text.contains(&format!("| expired memory entries | {expired} |")),
        "{text}"
    );
    assert!(
        text.contains("| none | 0.500 | 1 |"),
        "the empty agent name: {text}"
    );
    assert!(
        text.contains("| backup | 1 | 0 | 0 |"),
        "the backup job: {text}"
    );
    let backups = text
        .split("## Backups in the period")
        .nth(1)
        .expect("backups section");
    assert!(
        backups.lines().any(|l| l.starts_with("| 1 | 1 |")),
        "one verified backup: {backups}"
    );
}

#[test]
fn the_html_report_is_self_contained_and_its_charts_render() {
    let dir = setup();
    let db = dir.path().join("memory.db");
    let file = dir.path().join("report.html");
    run(
        dir.path(),
        &[
            "report",
            "--period=month",
            "--format=html",
            &format!("--output={}", file.display()),
        ],
    );
    let html = std::fs::read_to_string(&file).expect("report");
    assert!(!html.contains("<script"), "no script");
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "nothing fetched or linked"
    );
    let dom = chromium_dump(&format!("file://{}", file.display()));
    assert_eq!(
        dom.matches("<svg").count(),
        4,
        "three line charts and the tiers"
    );
    assert_eq!(
        dom.matches("<rect class=\"bar\"").count(),
        6,
        "one bar per tier"
    );
    // The patterns-added chart has a point for every day of the month.
    let chart = dom
        .split("class=\"chart added\"")
        .nth(1)
        .expect("added chart");
    let points = chart
        .split("points=\"")
        .nth(1)
        .expect("points")
        .split('"')
        .next()
        .expect("end");
    assert!(points.split_whitespace().count() >= 30, "{points}");
    let added = added_by_day(&db);
    let (day, n, _) = added.last().expect("a day");
    let row = dom
        .split(&format!("<td>{day}</td>"))
        .nth(1)
        .expect("the day's row");
    let cells: Vec<&str> = row
        .split("</tr>")
        .next()
        .expect("row")
        .split("<td>")
        .collect();
    assert_eq!(cells[2].trim_end_matches("</td>"), n.to_string(), "{row}");
    // Writing over an existing report leaves no temporary file behind.
    run(
        dir.path(),
        &[
            "report",
            "--period=week",
            "--format=html",
            &format!("--output={}", file.display()),
        ],
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_writes_reports_into_its_folder_and_posts_their_summary() {
    use tokio::sync::mpsc;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = setup();
    let config = format!(
        "[responder]\nnotify_url = \"{hook}\"\n{CONFIG}\n[[schedule]]\nname = \"weekly-report\"\ncron = \"* * * * * *\"\nreport = {{ period = \"week\", dir = \"reports\" }}\n"
    );
    let ct = crate::common::Caretaker::start(dir, &config).await;
    let body = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("a notification in time")
        .expect("a body");
    let text: serde_json::Value = serde_json::from_str(&body).expect("json");
    let text = text["text"].as_str().expect("text");
    assert!(
        text.contains("report:weekly-report on memory succeeded")
            && text.contains("memory weekly report:")
            && text.contains("patterns added"),
        "{text}"
    );
    let reports: Vec<_> = std::fs::read_dir(ct.dir.path().join("reports"))
        .expect("reports folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        reports
            .iter()
            .any(|n| n.starts_with("memory-week-") && n.ends_with(".html")),
        "{reports:?}"
    );
    let html =
        std::fs::read_to_string(ct.dir.path().join("reports").join(&reports[0])).expect("read");
    assert_eq!(html.matches("<svg").count(), 4);
    ct.stop().await;
    server.abort();
}

#[test]
fn a_schedule_needs_actions_or_a_report() {
    let text = format!("{CONFIG}[[schedule]]\nname = \"empty\"\ncron = \"0 2 * * *\"\n");
    let e = caretaker::config::Config::parse(Path::new("/x/caretaker.toml"), &text).unwrap_err();
    assert!(e.to_string().contains("needs actions or a report"), "{e}");
    let text = format!(
        "{CONFIG}[[schedule]]\nname = \"r\"\ncron = \"0 2 * * *\"\nreport = {{ period = \"year\", dir = \"x\" }}\n"
    );
    assert!(caretaker::config::Config::parse(Path::new("/x/caretaker.toml"), &text).is_err());
}
