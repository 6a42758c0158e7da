//! Outcome notifications to a Slack-compatible webhook (`{"text": ...}`).
//!
//! Sent from a task of its own after the job is recorded, with a timeout and
//! a few retries, so a slow or failing chat service never delays an action.
//! The URL is a credential (a Slack webhook's path is its secret): failures
//! are logged without it.

use std::time::Duration;

use serde_json::json;

use crate::responder::state::JobRecord;

const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(5);

/// The message for a finished job.
pub fn message(job: &JobRecord) -> String {
    let detail = job
        .error
        .clone()
        .or_else(|| {
            job.outcome
                .as_ref()
                .and_then(|o| o["summary"].as_str().map(str::to_string))
        })
        .unwrap_or_default();
    let trigger = match (&job.alertname, &job.rule) {
        (Some(alert), _) => format!(" (alert {alert})"),
        (None, Some(rule)) => format!(" ({rule})"),
        _ => format!(" ({})", job.source),
    };
    format!(
        "caretaker: {} on {} {}{}: {}",
        job.action, job.database, job.status, trigger, detail
    )
}

/// The error and its causes, without the URL: a Slack webhook's path is its
/// secret, and reqwest's error text names the URL.
pub(crate) fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Posts `text` to `url` in the background. The URL is never logged.
pub fn send(client: reqwest::Client, url: String, text: String) {
    tokio::spawn(async move {
        for attempt in 1..=ATTEMPTS {
            let result = client
                .post(&url)
                .timeout(TIMEOUT)
                .json(&json!({ "text": text }))
                .send()
                .await;
            match result {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::warn!(status = %r.status(), attempt, "notification refused"),
                Err(e) => tracing::warn!(error = %without_url(e), attempt, "notification failed"),
            }
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
        tracing::error!("notification dropped after {ATTEMPTS} attempts");
    });
}
