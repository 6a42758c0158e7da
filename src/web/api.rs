//! The action API: list recent jobs and audit events, run an action by hand.
//! Every route needs the bearer token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::hooks::refusal;
use super::AppState;
use crate::config::{known_action, ACTIONS};
use crate::metrics::unix_seconds;
use crate::responder::intake::MANUAL_COOLDOWN;
use crate::responder::manual::override_refusal;
use crate::responder::state::{JobFilter, NewJob, Recorded};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    action: Option<String>,
    database: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "state database error");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = refusal(&state, &headers, &uri) {
        return r;
    }
    let store = state.runtime.responder().executor.state.clone();
    let filter = JobFilter {
        action: q.action,
        database: q.database,
        status: q.status,
        limit: q.limit.unwrap_or(100),
    };
    match tokio::task::spawn_blocking(move || store.jobs(&filter)).await {
        Ok(Ok(jobs)) => Json(json!({ "jobs": jobs })).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<usize>,
}

pub async fn audit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Some(r) = refusal(&state, &headers, &uri) {
        return r;
    }
    let store = state.runtime.responder().executor.state.clone();
    let limit = q.limit.unwrap_or(100);
    match tokio::task::spawn_blocking(move || store.audit_events(limit)).await {
        Ok(Ok(events)) => Json(json!({ "events": events })).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct RunQuery {
    database: Option<String>,
    #[serde(default)]
    dry_run: bool,
    /// Answer when the job has finished (up to the action timeout).
    #[serde(default)]
    wait: bool,
    /// vacuum only: run even outside `[database.vacuum] window` (audited).
    #[serde(default)]
    ignore_window: bool,
}

pub async fn run(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(action): Path<String>,
    Query(q): Query<RunQuery>,
) -> Response {
    if let Some(r) = refusal(&state, &headers, &uri) {
        return r;
    }
    let config = state.runtime.config();
    if !known_action(&action, &config.commands) {
        return (
            StatusCode::NOT_FOUND,
            format!("unknown action; known: {}\n", ACTIONS[..11].join(", ")),
        )
            .into_response();
    }
    if let Some(refusal) = override_refusal(&action, q.ignore_window) {
        return (StatusCode::BAD_REQUEST, format!("{refusal}\n")).into_response();
    }
    let database = match q.database {
        Some(name) if config.database(&name).is_some() => name,
        Some(_) => {
            return (StatusCode::BAD_REQUEST, "database is not configured\n").into_response()
        }
        None if config.databases.len() == 1 => config.databases[0].name.clone(),
        None => {
            return (
                StatusCode::BAD_REQUEST,
                "say which database: ?database=NAME\n",
            )
                .into_response()
        }
    };
    let responder = state.runtime.responder();
    let Some(mut room) = responder.queue.reserve(1) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "job queue is full; retry later\n",
        )
            .into_response();
    };
    let now = unix_seconds(std::time::SystemTime::now());
    let job = NewJob {
        key: format!("api/{action}/{database}/{now:.6}/{}", rand::random::<u32>()),
        source: "api",
        action,
        database,
        dry_run: q.dry_run,
        ignore_window: q.ignore_window,
        cooldown: MANUAL_COOLDOWN,
        ..Default::default()
    };
    let store = responder.executor.state.clone();
    let id = match tokio::task::spawn_blocking(move || store.record(&[job], &[], now)).await {
        Ok(Ok(r)) => match r.first() {
            Some(Recorded::New(id)) => *id,
            _ => return internal("job was not recorded"),
        },
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    room.send(id);
    if !q.wait {
        return (StatusCode::ACCEPTED, Json(json!({ "job": id }))).into_response();
    }
    let until = Instant::now() + config.responder.action_timeout + Duration::from_secs(5);
    loop {
        let store = responder.executor.state.clone();
        if let Ok(Ok(Some(job))) = tokio::task::spawn_blocking(move || store.job(id)).await {
            if !matches!(job.status.as_str(), "queued" | "running") {
                return Json(json!({ "job": job })).into_response();
            }
        }
        if Instant::now() >= until {
            return (
                StatusCode::ACCEPTED,
                Json(json!({ "job": id, "status": "still running" })),
            )
                .into_response();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
