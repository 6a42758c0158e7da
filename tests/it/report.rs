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

/// Files under `dir` (any depth) whose name ends with `suffix`, with sizes.
fn files_ending(dir: &Path, suffix: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_ending(&path, suffix));
        } else if entry.file_name().to_string_lossy().ends_with(suffix) {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.metadata().expect("meta").len(),
            ));
        }
    }
    out
}

/// The cells of the first row of `section` whose first cell starts with
/// `first` (the header and the rule line are not rows).
fn row<'a>(text: &'a str, section: &str, first: &str) -> Vec<&'a str> {
    let body = text
        .split(&format!("## {section}"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {section} in {text}"));
    let line = body
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .find(|l| l.starts_with(&format!("| {first}")))
        .unwrap_or_else(|| panic!("no row {first:?} in {section}: {body}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn offsite_copies_and_drills_are_counted_as_they_were_done() {
    let dir = setup();
    let remote = dir.path().join("remote");
    std::fs::create_dir(&remote).expect("remote");
    std::fs::write(
        dir.path().join("caretaker.toml"),
        format!(
            "{CONFIG}[database.backup.offsite]\nurl = \"file://{}\"\nencrypt = false\n",
            remote.display()
        ),
    )
    .expect("config");
    run(dir.path(), &["run", "backup"]);
    run(dir.path(), &["run", "backup"]);
    run(dir.path(), &["run", "restore_drill"]);
    // Without its manifest the local drill fails (the offsite one passes).
    let manifests = files_ending(&dir.path().join("backups"), ".manifest.json");
    let newest = manifests
        .iter()
        .map(|m| &m.0)
        .max()
        .expect("a local manifest");
    std::fs::remove_file(dir.path().join("backups").join(newest)).expect("remove");
    let failed = caretaker()
        .args(["run", "restore_drill"])
        .arg(format!(
            "--config.file={}",
            dir.path().join("caretaker.toml").display()
        ))
        .output()
        .expect("drill");
    assert!(!failed.status.success());

    let text = String::from_utf8_lossy(
        &run(
            dir.path(),
            &["report", "--period=week", "--format=markdown"],
        )
        .stdout,
    )
    .into_owned();
    let uploaded = files_ending(&remote, ".db.zst");
    assert_eq!(uploaded.len(), 2, "{uploaded:?}");
    let bytes: u64 = uploaded.iter().map(|u| u.1).sum();
    let offsite = row(&text, "Offsite copies in the period", "");
    assert_eq!(
        offsite,
        ["2", &bytes.to_string(), "0", "2", &bytes.to_string()],
        "{text}"
    );
    // One drill passed both sources; the second failed its local one.
    let local = row(&text, "Restore drills in the period", "local");
    assert_eq!(&local[1..3], ["1", "–"], "{text}");
    assert_eq!(local[4], "failed", "{text}");
    let off = row(&text, "Restore drills in the period", "offsite");
    assert_eq!(&off[1..3], ["1", "–"], "{text}");
    assert_eq!(off[4], "passed", "{text}");
    let jobs = row(
        &text,
        "Restore drills in the period",
        "all (restore_drill jobs)",
    );
    assert_eq!(&jobs[1..3], ["1", "1"], "{text}");
    assert!(text.contains("| restore_drill | 1 | 1 | 0 |"), "{text}");

    // The HTML form has the same two tables.
    let file = dir.path().join("report.html");
    run(
        dir.path(),
        &[
            "report",
            "--period=week",
            "--format=html",
            &format!("--output={}", file.display()),
        ],
    );
    let html = std::fs::read_to_string(&file).expect("html");
    assert!(
        html.contains("<h2>Offsite copies in the period</h2>"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<tr><td>2</td><td>{bytes}</td><td>0</td><td>2</td><td>{bytes}</td></tr>"
        )),
        "{html}"
    );
    assert!(html.contains("<tr><td>offsite</td><td>1</td>"), "{html}");
}
