//! Every shipped alert's `runbook_url` opens its section. Here: every rule
//! uses the one link form, and `/runbooks` is a public, self-contained page
//! with an anchor per alert. [`expanded`]: the real Prometheus expands each
//! link and the caretaker it names opens it.

use std::path::Path;

use crate::common::Caretaker;
use crate::responder::{responder_config, wal_database, TOKEN};
use crate::runbook_steps::repo_file;

mod expanded;

/// The one runbook link of every alert, before `#<anchor>` (the comment at
/// the top of alerts/caretaker.rules.yml explains it).
pub const FORM: &str = concat!(
    "{{ with $externalLabels.caretaker_runbook_base }}{{ . }}{{ else }}",
    "{{ with $labels.instance }}",
    "{{ or $externalLabels.caretaker_runbook_scheme \"http\" }}://{{ . }}/runbooks",
    "{{ else }}file:///usr/share/doc/caretaker/runbooks.md{{ end }}{{ end }}"
);

/// Where the Debian package puts docs/runbooks.md (`[package.metadata.deb]`).
pub const INSTALLED: &str = "file:///usr/share/doc/caretaker/runbooks.md";

/// One alert of alerts/*.rules.yml, as far as its link is concerned.
#[derive(Debug)]
pub struct Alert {
    pub name: String,
    /// The annotation as written (single quotes removed), if it is one line.
    pub runbook_url: Option<String>,
    /// Its expression is `absent(...)` or `vector(...)`: the alert has no
    /// instance label.
    pub absent: bool,
}

/// The alerts of every shipped rules file, read line by line.
pub fn shipped_alerts() -> Vec<Alert> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("alerts/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
        .collect();
    files.sort();
    let mut alerts = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("rules");
        let mut current: Option<Alert> = None;
        for line in text.lines() {
            let trimmed = line.trim_start();
            if let Some(name) = trimmed.strip_prefix("- alert:") {
                alerts.extend(current.take());
                current = Some(Alert {
                    name: name.trim().to_string(),
                    runbook_url: None,
                    absent: false,
                });
            } else if trimmed.starts_with("- record:") {
                alerts.extend(current.take());
            } else if let Some(alert) = current.as_mut() {
                alert.absent |= trimmed.contains("absent(") || trimmed.contains("vector(");
                if let Some(value) = trimmed.strip_prefix("runbook_url:") {
                    let value = value.trim();
                    alert.runbook_url = value
                        .strip_prefix('\'')
                        .and_then(|v| v.strip_suffix('\''))
                        .map(|v| v.replace("''", "'"));
                }
            }
        }
        alerts.extend(current);
    }
    alerts
}

#[test]
fn every_alert_links_its_runbook_in_the_shared_form() {
    let alerts = shipped_alerts();
    let rules = repo_file("alerts/caretaker.rules.yml") + &repo_file("alerts/responder.rules.yml");
    assert_eq!(
        alerts.len(),
        rules.matches("- alert:").count(),
        "every alert read"
    );
    assert!(alerts.len() >= 30, "{alerts:?}");
    let runbooks = repo_file("docs/runbooks.md");
    for alert in &alerts {
        let expected = format!("{FORM}#{}", alert.name.to_lowercase());
        assert_eq!(
            alert.runbook_url.as_deref(),
            Some(expected.as_str()),
            "{}: runbook_url must be the shared form (one single-quoted line)",
            alert.name
        );
        assert!(
            runbooks.contains(&format!("\n### {}\n", alert.name)),
            "{}: no section in docs/runbooks.md",
            alert.name
        );
    }
    // The fallback names a file the package really installs.
    assert!(
        repo_file("Cargo.toml")
            .contains(r#"["docs/runbooks.md", "usr/share/doc/caretaker/", "644"]"#),
        "the Debian package installs the runbooks where {INSTALLED} says"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbooks_page_is_public_self_contained_and_linked_from_the_landing_page() {
    let ct = Caretaker::start(wal_database(), &responder_config("")).await;
    let landing = ct.get("/").await.text().await.expect("landing");
    assert!(landing.contains("href=\"/runbooks\""), "{landing}");

    // No token needed, as for the landing page.
    let response = ct.get("/runbooks").await;
    assert_eq!(response.status(), 200);
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    let page = response.text().await.expect("page");
    // Nothing fetched, nothing run: no script, no element or style that loads.
    for forbidden in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "src=", "url(", "@import",
    ] {
        assert!(!page.contains(forbidden), "the page contains {forbidden:?}");
    }
    // Nothing of this caretaker's configuration or credentials.
    let config_path = ct.config_path.display().to_string();
    for secret in [TOKEN, config_path.as_str()] {
        assert!(!page.contains(secret), "the page shows {secret:?}");
    }

    // A browser builds every alert's anchor from the page.
    let dom = crate::http::chromium_dump(&format!("{}/runbooks", ct.base));
    for alert in shipped_alerts() {
        let id = format!(" id=\"{}\"", alert.name.to_lowercase());
        assert!(dom.contains(&id), "{} not in the DOM", alert.name);
    }
    ct.stop().await;
}
