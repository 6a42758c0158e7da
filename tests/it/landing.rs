//! The landing page in headless Chromium against a running caretaker: each
//! database's size, newest backup and last drill as `/metrics` has them, and
//! a sparkline of the last hour's sizes that rises when a database grows.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::backup_actions::add_patterns;
use crate::common::{caretaker, create_db, parse, value, Caretaker, Sample};
use crate::http::chromium_dump;

/// One database growing in rollback-journal mode, one of 20 KB rows
/// (overflow pages) that does not change, in a folder whose name needs
/// escaping.
const CONFIG: &str = r#"[collect]
database_interval = "200ms"
backups_interval = "200ms"

[[database]]
name = "memory"
path = "memory.db"
[database.backup]
dir = "backups"

[[database]]
name = "archive"
path = "odd & <dir>/archive.db"
"#;

fn prepare(dir: &Path) {
    let conn = create_db(&dir.join("memory.db"));
    add_patterns(&conn, 0, 300);
    drop(conn);
    std::fs::create_dir(dir.join("odd & <dir>")).expect("odd folder");
    let conn = create_db(&dir.join("odd & <dir>/archive.db"));
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
         INSERT INTO patterns (id, type, pattern_data, created_at)
           SELECT 'big' || i, 'blob', hex(randomblob(10000)), datetime('now') FROM n",
        [],
    )
    .expect("large rows");
    let config = dir.join("caretaker.toml");
    std::fs::write(&config, CONFIG).expect("config");
    for action in ["backup", "restore_drill"] {
        let out = caretaker()
            .args(["run", action, "--database=memory"])
            .arg(format!("--config.file={}", config.display()))
            .output()
            .expect("caretaker run");
        assert!(out.status.success(), "{action}: {out:?}");
    }
}

/// The `data-database` row of `db` in `dom`.
fn row<'a>(dom: &'a str, db: &str) -> &'a str {
    let start = dom
        .find(&format!("<tr class=\"database\" data-database=\"{db}\""))
        .unwrap_or_else(|| panic!("row {db} in {dom}"));
    dom[start..].split("</tr>").next().expect("row")
}

/// The value of attribute `name` after `marker` in `html`.
fn attr(html: &str, marker: &str, name: &str) -> Option<String> {
    let rest = &html[html.find(marker)?..];
    let rest = &rest[rest.find(&format!("{name}=\""))? + name.len() + 2..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The `(x, y)` points of the sparkline's `class` line in `row`.
fn line(row: &str, class: &str) -> Vec<(f64, f64)> {
    let svg = &row[row.find("<svg class=\"sparkline\"").expect("a sparkline")..];
    attr(svg, &format!("class=\"{class}\""), "points")
        .expect("points")
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').expect("x,y");
            (x.parse().expect("x"), y.parse().expect("y"))
        })
        .collect()
}

/// Renders the page in Chromium until `check` holds of it.
fn dom_until(base: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dom = chromium_dump(&format!("{base}/"));
        if check(&dom) {
            return dom;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{dom}"
        );
    }
}

fn figure(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(samples, name, labels).unwrap_or_else(|| panic!("{name}{labels:?} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landing_page_shows_the_metrics_figures_and_a_sparkline_that_rises_with_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    prepare(dir.path());
    let ct = Caretaker::start(dir, CONFIG).await;
    let base = ct.base.clone();

    // Two points each before anything grows: flat lines.
    let dom = tokio::task::spawn_blocking({
        let base = base.clone();
        move || {
            dom_until(&base, "two points per sparkline", |dom| {
                ["memory", "archive"].iter().all(|db| {
                    dom.contains(&format!("data-database=\"{db}\""))
                        && line(row(dom, db), "size").len() >= 2
                })
            })
        }
    })
    .await
    .expect("chromium");
    for db in ["memory", "archive"] {
        let size = line(row(&dom, db), "size");
        assert!(size.windows(2).all(|w| w[0].1 == w[1].1), "{db}: {size:?}");
        assert_eq!(line(row(&dom, db), "wal").len(), size.len());
    }
    // The odd folder reaches the page as text, not markup.
    assert!(
        row(&dom, "archive").contains("odd &amp; &lt;dir&gt;/archive.db"),
        "{}",
        row(&dom, "archive")
    );

    // The figures are the ones /metrics shows (read before and after the
    // page, so no collection came between).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (dom, samples) = loop {
        let before = parse(&ct.metrics_text().await);
        let dom = tokio::task::spawn_blocking({
            let base = base.clone();
            move || chromium_dump(&format!("{base}/"))
        })
        .await
        .expect("chromium");
        let after = ct.metrics().await;
        let steady = ["memory", "archive"].iter().all(|db| {
            value(
                &before,
                "caretaker_database_size_bytes",
                &[("database", db)],
            ) == value(&after, "caretaker_database_size_bytes", &[("database", db)])
        });
        if steady {
            break (dom, after);
        }
        assert!(Instant::now() < deadline, "the figures never held still");
    };
    for db in ["memory", "archive"] {
        let shown: f64 = attr(row(&dom, db), "class=\"size\"", "data-bytes")
            .expect("a size")
            .parse()
            .expect("bytes");
        let on_disk = match db {
            "memory" => ct.dir.path().join("memory.db"),
            _ => ct.dir.path().join("odd & <dir>/archive.db"),
        };
        assert_eq!(
            shown,
            figure(
                &samples,
                "caretaker_database_size_bytes",
                &[("database", db)]
            )
        );
        assert_eq!(
            shown,
            std::fs::metadata(on_disk).expect("size").len() as f64
        );
    }
    let memory = row(&dom, "memory");
    let backup: f64 = attr(memory, "class=\"backup\"", "data-timestamp")
        .expect("a backup")
        .parse()
        .expect("seconds");
    let labels = [("database", "memory")];
    assert_eq!(
        backup,
        figure(
            &samples,
            "caretaker_backup_last_success_timestamp_seconds",
            &labels
        )
    );
    let drill: f64 = attr(memory, "data-source=\"local\"", "data-timestamp")
        .expect("a drill")
        .parse()
        .expect("seconds");
    let local = [("database", "memory"), ("source", "local")];
    assert_eq!(
        drill,
        figure(
            &samples,
            "caretaker_restore_drill_timestamp_seconds",
            &local
        )
    );
    assert!(
        memory.contains("class=\"drill up\" data-source=\"local\""),
        "{memory}"
    );
    assert!(memory.contains("local ok, "), "{memory}");
    let archive = row(&dom, "archive");
    assert!(
        archive.contains("not configured") && archive.contains(">never<"),
        "{archive}"
    );

    // memory grows by about 2 MB: its line rises to the right; archive's stays flat.
    let conn = rusqlite::Connection::open(ct.dir.path().join("memory.db")).expect("open");
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
         INSERT INTO patterns (id, type, pattern_data, created_at)
           SELECT 'grown' || i, 'blob', hex(randomblob(5000)), datetime('now') FROM n",
        [],
    )
    .expect("grow");
    drop(conn);
    let dom = tokio::task::spawn_blocking(move || {
        dom_until(&base, "memory's line to rise", |dom| {
            let size = line(row(dom, "memory"), "size");
            size.len() >= 2 && size[size.len() - 1].1 < size[0].1
        })
    })
    .await
    .expect("chromium");
    let size = line(row(&dom, "memory"), "size");
    assert!(
        size.windows(2).all(|w| w[0].0 <= w[1].0),
        "time runs left to right: {size:?}"
    );
    let flat = line(row(&dom, "archive"), "size");
    assert!(
        flat.windows(2).all(|w| w[0].1 == w[1].1),
        "archive: {flat:?}"
    );
    ct.stop().await;
}
