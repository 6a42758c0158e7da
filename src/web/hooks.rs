//! `POST /hooks/alertmanager`: Alertmanager's webhook receiver.
//!
//! Authenticated before the body is read (see [`super::guard`]); then parse
//! leniently and hand the notification to the responder, which records every
//! decision durably and queues the new jobs ([`Responder::receive`]); answer
//! 202. Only a failure to record answers 5xx, so Alertmanager retries exactly
//! when it should; bad input is a 4xx. Every answer is counted by its code.
//!
//! [`Responder::receive`]: crate::responder::Responder::receive

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{AppState, WebError};
use crate::responder::metrics::labels;
use crate::responder::plan::Notification;
use crate::responder::submit::SubmitError;

pub async fn alertmanager(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let response = receive(&state, &body).await.into_response();
    state
        .runtime
        .responder()
        .metrics()
        .touch()
        .webhook_requests
        .get_or_create(&labels(&[("code", response.status().as_str())]))
        .inc();
    response
}

async fn receive(state: &AppState, body: &[u8]) -> Result<(StatusCode, Json<Value>), WebError> {
    // Straight into the struct (no intermediate `Value`: half the handler's
    // allocations). Serde would also read a struct from a JSON array, so the
    // payload must open with `{`.
    let opens_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let parsed = if opens_object {
        serde_json::from_slice::<Notification>(body)
    } else {
        Err(serde::de::Error::custom("expected a JSON object"))
    };
    let notification =
        parsed.map_err(|e| WebError::BadRequest(format!("invalid Alertmanager payload: {e}")))?;
    let runtime = &state.runtime;
    let summary = runtime
        .responder()
        .receive(notification, runtime.config())
        .await
        .map_err(|e| match e {
            SubmitError::QueueFull => WebError::Unavailable("job queue is full; retry later"),
            e => WebError::internal("could not record the notification", e),
        })?;
    let body = json!({
        "accepted": summary.accepted.len(),
        "duplicates": summary.duplicates,
        "unmatched": summary.unmatched,
        "unknown_database": summary.unknown_database,
        "resolved": summary.resolved,
        "other_instance": summary.other_instance,
    });
    Ok((StatusCode::ACCEPTED, Json(body)))
}
