//! The HTTP contract: content type, `# EOF`, health, readiness, the landing
//! page, and the output validated by a strict OpenMetrics parser.

use std::process::Command;

use crate::common::{create_db, one_database_config, Caretaker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_strict_openmetrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = create_db(&dir.path().join("memory.db"));
    conn.execute_batch(
        r#"INSERT INTO patterns VALUES ('a', 'q"uote', 'd', 0.95, 12, datetime('now'), datetime('now'), 'back\slash');
           INSERT INTO patterns VALUES ('b', 'new
line', 'd', 0.1, 0, datetime('now'), NULL, 'ünï ✓');
           INSERT INTO patterns VALUES ('c', '', 'd', 0.5, 1, datetime('now'), NULL, NULL);"#,
    )
    .expect("fill");
    let ct = Caretaker::start(dir, &one_database_config("")).await;
    let response = ct.get("/metrics").await;
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = response.text().await.expect("body");
    assert!(body.ends_with("# EOF\n"), "ends with # EOF");
    let path = ct.dir.path().join("metrics.txt");
    std::fs::write(&path, &body).expect("write");
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
names = [f.name for f in text_string_to_metric_families(open(sys.argv[1], encoding="utf-8").read())]
assert len(names) == len(set(names)), "duplicate families"
labels = set()
print(len(names))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "strict parser refused the output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("count");
    assert!(families > 40, "only {families} families");
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_landing_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_db(&dir.path().join("memory.db"));
    let config = "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n[[database]]\nname = \"absent\"\npath = \"absent.db\"\n";
    let ct = Caretaker::start(dir, config).await;
    assert_eq!(ct.get("/-/healthy").await.status(), 200);
    assert_eq!(ct.get("/-/ready").await.status(), 200);
    let page = ct.get("/").await.text().await.expect("page");
    assert!(
        page.contains("data-database=\"memory\"><td>memory</td>"),
        "{page}"
    );
    assert!(page.contains(env!("CARGO_PKG_VERSION")));
    assert!(page.contains("href=\"/metrics\""));
    assert!(
        page.contains("id=\"actions\"") && page.contains("href=\"/api/v1/actions\""),
        "{page}"
    );
    let dom = chromium_dump(&format!("{}/", ct.base));
    let row = |db: &str| {
        let start = dom
            .find(&format!("data-database=\"{db}\""))
            .unwrap_or_else(|| panic!("row {db} in {dom}"));
        dom[start..].split("</tr>").next().expect("row").to_string()
    };
    assert!(
        row("memory").contains("class=\"up\">up<"),
        "{}",
        row("memory")
    );
    assert!(
        row("absent").contains("class=\"down\">down<"),
        "{}",
        row("absent")
    );
    ct.stop().await;
}

/// Renders a page in headless Chromium and returns its DOM.
pub fn chromium_dump(url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
