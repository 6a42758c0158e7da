//! The action API: list recent jobs and audit events, run an action by hand.
//! Every route needs the API's bearer token (checked by [`super::guard`]);
//! runs are limited per action and database (`web.api_max_runs` per
//! `web.api_window`), because they skip the cooldown and breaker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::auth::Credential;
use super::AppState;
use crate::actions::kind::ActionKind;
use crate::config::known_action;
use crate::metrics::unix_seconds;
use crate::responder::intake::MANUAL_COOLDOWN;
use crate::responder::job::JobSource;
use crate::responder::manual::override_refusal;
use crate::responder::safety;
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

pub async fn list(State(state): State<Arc<AppState>>, Query(q): Query<ListQuery>) -> Response {
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

pub async fn audit(State(state): State<Arc<AppState>>, Query(q): Query<AuditQuery>) -> Response {
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

/// Serialises the rate check and the recording of API runs, so two
/// concurrent requests cannot both take the last run of a window.
#[derive(Debug, Default)]
pub struct ApiGate(tokio::sync::Mutex<()>);

pub async fn run(
    State(state): State<Arc<AppState>>,
    Extension(credential): Extension<Credential>,
    Extension(gate): Extension<Arc<ApiGate>>,
    Path(action): Path<String>,
    Query(q): Query<RunQuery>,
) -> Response {
    let config = state.runtime.config();
    if !known_action(&action, &config.commands) {
        return (
            StatusCode::NOT_FOUND,
            format!("unknown action; known: {}\n", ActionKind::known_list()),
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
    let web = &config.web;
    let (max_runs, window) = (web.api_max_runs, web.api_window);
    let turn = gate.0.lock().await;
    let now = unix_seconds(std::time::SystemTime::now());
    let job = NewJob {
        key: format!("api/{action}/{database}/{now:.6}/{}", rand::random::<u32>()),
        source: JobSource::Api,
        credential: Some(credential.as_str()),
        action,
        database,
        dry_run: q.dry_run,
        ignore_window: q.ignore_window,
        cooldown: MANUAL_COOLDOWN,
        ..Default::default()
    };
    let store = responder.executor.state.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let since = now - window.as_secs_f64();
        let recent = store.api_runs_since(&job.action, &job.database, since)?;
        if let Some(wait) = safety::rate_hold(&recent, now, max_runs, window) {
            return Ok(Err(wait));
        }
        store.record(&[job], &[], now).map(Ok)
    })
    .await;
    drop(turn);
    let id = match recorded {
        Ok(Ok(Ok(r))) => match r.first() {
            Some(Recorded::New(id)) => *id,
            _ => return internal("job was not recorded"),
        },
        Ok(Ok(Err(wait))) => {
            let seconds = wait.as_secs_f64().ceil().max(1.0);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, format!("{seconds:.0}"))],
                format!(
                    "at most {max_runs} API runs of this action on this database per {}; retry in {seconds:.0} s\n",
                    humantime::format_duration(window)
                ),
            )
                .into_response();
        }
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    room.send(id);
    if !q.wait {
        return (StatusCode::ACCEPTED, Json(json!({ "job": id }))).into_response();
    }
    let now = Instant::now();
    let until = now
        .checked_add(config.responder.action_timeout + Duration::from_secs(5))
        .unwrap_or(now + Duration::from_secs(365 * 86_400));
    loop {
        let store = responder.executor.state.clone();
        if let Ok(Ok(Some(job))) = tokio::task::spawn_blocking(move || store.job(id)).await {
            if job.status.is_final() {
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
