//! The action API: list recent jobs and audit events, run an action by hand.
//! Every route needs the API's bearer token (checked by [`super::guard`]);
//! runs are limited per action and database (`web.api_max_runs` per
//! `web.api_window`, counted by [`Responder::run_by_hand`]), because they
//! skip the cooldown and breaker.
//!
//! [`Responder::run_by_hand`]: crate::responder::Responder::run_by_hand

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::auth::Credential;
use super::{AppState, WebError};
use crate::actions::kind::ActionKind;
use crate::config::known_action;
use crate::metrics::unix_seconds;
use crate::responder::intake::MANUAL_COOLDOWN;
use crate::responder::job::JobSource;
use crate::responder::manual::override_refusal;
use crate::responder::state::{JobFilter, NewJob};
use crate::responder::submit::SubmitError;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    action: Option<String>,
    database: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
}

/// Our failure to read or write the state database.
fn internal(e: impl std::fmt::Display) -> WebError {
    WebError::internal("internal error", e)
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    let filter = JobFilter {
        action: q.action,
        database: q.database,
        status: q.status,
        limit: q.limit.unwrap_or(100),
    };
    let jobs = state
        .runtime
        .responder()
        .jobs(filter)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "jobs": jobs })).into_response())
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<usize>,
}

pub async fn audit(
    State(state): State<Arc<AppState>>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, WebError> {
    let limit = q.limit.unwrap_or(100);
    let events = state
        .runtime
        .responder()
        .audit_events(limit)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "events": events })).into_response())
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
    Extension(credential): Extension<Credential>,
    Path(action): Path<String>,
    Query(q): Query<RunQuery>,
) -> Result<Response, WebError> {
    let config = state.runtime.config();
    if !known_action(&action, &config.commands) {
        return Err(WebError::NotFound(format!(
            "unknown action; known: {}",
            ActionKind::known_list()
        )));
    }
    if let Some(refusal) = override_refusal(&action, q.ignore_window) {
        return Err(WebError::BadRequest(refusal));
    }
    let database = match q.database {
        Some(name) if config.database(&name).is_some() => name,
        Some(_) => return Err(WebError::BadRequest("database is not configured".into())),
        None if config.databases.len() == 1 => config.databases[0].name.clone(),
        None => {
            return Err(WebError::BadRequest(
                "say which database: ?database=NAME".into(),
            ))
        }
    };
    let responder = state.runtime.responder();
    let web = &config.web;
    let (max_runs, window) = (web.api_max_runs, web.api_window);
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
    let id = match responder.run_by_hand(job, max_runs, window).await {
        Ok(id) => id,
        Err(SubmitError::QueueFull) => {
            return Err(WebError::Unavailable("job queue is full; retry later"))
        }
        Err(SubmitError::RateLimited(wait)) => {
            let seconds = wait.as_secs_f64().ceil().max(1.0);
            return Err(WebError::TooManyRequests {
                retry_after_seconds: seconds as u64,
                message: format!(
                    "at most {max_runs} API runs of this action on this database per {}; retry in {seconds:.0} s",
                    humantime::format_duration(window)
                ),
            });
        }
        Err(e) => return Err(internal(e)),
    };
    if !q.wait {
        return Ok((StatusCode::ACCEPTED, Json(json!({ "job": id }))).into_response());
    }
    let now = Instant::now();
    let until = now
        .checked_add(config.responder.action_timeout + Duration::from_secs(5))
        .unwrap_or(now + Duration::from_secs(365 * 86_400));
    loop {
        if let Ok(Some(job)) = responder.job(id).await {
            if job.status.is_final() {
                return Ok(Json(json!({ "job": job })).into_response());
            }
        }
        if Instant::now() >= until {
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "job": id, "status": "still running" })),
            )
                .into_response());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
