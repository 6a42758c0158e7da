//! `POST /hooks/alertmanager`: Alertmanager's webhook receiver.
//!
//! Authenticated before the body is read (see [`super::guard`]); then parse
//! leniently, reserve queue room, record every decision durably, queue the
//! new jobs, answer 202. Only a failure to record answers
//! 5xx, so Alertmanager retries exactly when it should; bad input is a 4xx.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::config::Config;
use crate::metrics::unix_seconds;
use crate::responder::intake::{self, IntakeSummary};
use crate::responder::metrics::labels;
use crate::responder::plan::{Alert, Decision, Notification};
use crate::responder::Responder;

fn counted(state: &AppState, code: StatusCode, body: impl IntoResponse) -> Response {
    let metrics = &state.runtime.responder().executor.metrics;
    metrics
        .webhook_requests
        .get_or_create(&labels(&[("code", code.as_str())]))
        .inc();
    (code, body).into_response()
}

pub async fn alertmanager(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    // Straight into the struct (no intermediate `Value`: half the handler's
    // allocations). Serde would also read a struct from a JSON array, so the
    // payload must open with `{`.
    let opens_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let parsed = if opens_object {
        serde_json::from_slice::<Notification>(&body)
    } else {
        Err(serde::de::Error::custom("expected a JSON object"))
    };
    let notification: Notification = match parsed {
        Ok(n) => n,
        Err(e) => {
            return counted(
                &state,
                StatusCode::BAD_REQUEST,
                format!("invalid Alertmanager payload: {e}\n"),
            );
        }
    };
    let config = state.runtime.config();
    let planned = intake::decisions(&notification, &config);
    let responder = state.runtime.responder();
    let Some(mut room) = responder.queue.reserve(intake::jobs_needed(&planned)) else {
        let metrics = &responder.executor.metrics;
        metrics.skipped("", "", crate::responder::job::SkipReason::QueueFull);
        tracing::warn!(
            alerts = notification.alerts.len(),
            "job queue full; asking Alertmanager to retry"
        );
        return counted(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "job queue is full; retry later\n",
        );
    };
    let summary = match record(planned, notification.notification_reason, config, responder).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "could not record the notification");
            return counted(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not record the notification\n",
            );
        }
    };
    for id in &summary.accepted {
        if !room.send(*id) {
            tracing::error!(
                job = id,
                "no reserved room for a recorded job; it runs after the next restart"
            );
        }
    }
    let body = Json(json!({
        "accepted": summary.accepted.len(),
        "duplicates": summary.duplicates,
        "unmatched": summary.unmatched,
        "unknown_database": summary.unknown_database,
        "resolved": summary.resolved,
    }));
    counted(&state, StatusCode::ACCEPTED, body)
}

/// Records a planned notification durably. The common case (new alerts, no
/// resolved episode, no duplicate) awaits the group commit on this task; only
/// the steps that read the state database run on a blocking thread.
async fn record(
    planned: Vec<(Alert, Vec<Decision>)>,
    reason: Option<String>,
    config: Arc<Config>,
    responder: &Responder,
) -> Result<IntakeSummary, String> {
    let executor = responder.executor.clone();
    let now = unix_seconds(std::time::SystemTime::now());
    if intake::prepare_reads_state(&planned) {
        return blocking(move || {
            let (state, metrics) = (&executor.state, &executor.metrics);
            intake::record(&planned, reason.as_deref(), &config, state, metrics, now)
        })
        .await;
    }
    let intake::Prepared {
        jobs,
        events,
        mut summary,
    } = intake::prepare(&planned, &config, &executor.state, &executor.metrics, now)
        .map_err(|e| e.to_string())?;
    let recorded = executor
        .state
        .record_async(jobs.clone(), events, now)
        .await
        .map_err(|e| e.to_string())?;
    let reads_state = intake::settle_touches_state(&recorded);
    let settle = move || {
        let (state, metrics) = (&executor.state, &executor.metrics);
        let reason = reason.as_deref();
        intake::settle(
            &planned,
            reason,
            &jobs,
            recorded,
            state,
            metrics,
            now,
            &mut summary,
        )
        .map(|()| summary)
    };
    if reads_state {
        blocking(settle).await
    } else {
        settle().map_err(|e| e.to_string())
    }
}

/// Runs state-database work that may wait on SQLite on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(work).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("recording task failed: {e}")),
    }
}
