//! The HTTP face of caretaker: `/metrics`, health, readiness, a landing page
//! and the runbooks, the webhook and the action API.
//!
//! Handlers only read shared state: `/metrics` encodes the snapshot that the
//! collectors keep current, so a scrape never waits on SQLite or the disk.
//! Requests are authenticated in [`guard`] (basic auth on every route when
//! the web config file sets users, the bearer token on the webhook and API)
//! before their body is read; [`serve`] bounds connections and header read
//! time and speaks TLS when [`security`] says so.
//! Every refusal and failure is a [`WebError`]. The running caretaker is seen
//! only through [`AppHandle`], so this layer never reaches into the daemon.

mod api;
pub mod auth;
mod error;
mod exposition;
mod guard;
mod hooks;
mod landing;
mod negotiate;
mod runbooks;
pub mod security;
pub mod serve;
mod sparkline;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use prometheus_client::registry::Registry;
use tower_http::timeout::TimeoutLayer;

use crate::config::Config;
use crate::metrics::{Snapshot, OPENMETRICS_CONTENT_TYPE};
use crate::responder::metrics::ResponderMetrics;
use crate::responder::Responder;
use auth::Credentials;
pub use error::WebError;
use security::WebSecurity;

/// What the handlers need of the running caretaker, and nothing more: the
/// daemon implements it, the handlers call it.
pub trait AppHandle: Send + Sync {
    /// The configuration in force (a reload replaces it whole).
    fn config(&self) -> Arc<Config>;
    /// The collectors' snapshot, for `/metrics` and the landing page.
    fn snapshot(&self) -> &Arc<Snapshot>;
    /// Whether every source has been collected once.
    fn ready(&self) -> bool;
    /// The bearer tokens in force (a reload that can read them replaces them).
    fn credentials(&self) -> Arc<Credentials>;
    /// Where notifications and runs by hand go in and the history is read.
    fn responder(&self) -> &Responder;
    /// The web config file in force: TLS, basic-auth users, headers.
    fn web_security(&self) -> Arc<WebSecurity>;
}

/// What the handlers share.
pub struct AppState {
    /// The responder's families ([`AppState::live`]), and nothing else.
    pub registry: Registry,
    /// Counts every change to `registry`: a scrape encodes it only after one.
    pub live: Arc<ResponderMetrics>,
    /// The running caretaker, seen through what the handlers need.
    pub runtime: Arc<dyn AppHandle>,
}

/// The router, separate from any listener so tests can drive it directly.
pub fn router(state: Arc<AppState>) -> Router {
    let limits = state.runtime.config().responder.clone();
    // The request timeout bounds slow senders of webhook bodies; an API call
    // with `wait=true` legitimately lasts as long as its action.
    let timeout =
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout);
    let log = Arc::new(guard::RefusalLog::default());
    let guard = |scope| {
        from_fn_with_state(
            guard::Guard {
                app: state.clone(),
                scope,
                log: log.clone(),
            },
            guard::authenticate,
        )
    };
    let webhook = Router::new()
        .route(
            "/hooks/alertmanager",
            post(hooks::alertmanager).layer(timeout),
        )
        .route_layer(guard(auth::Scope::Webhook));
    let api = Router::new()
        .route("/api/v1/actions", get(api::list))
        .route("/api/v1/audit", get(api::audit))
        .route("/api/v1/actions/{action}", post(api::run))
        .route_layer(guard(auth::Scope::Api));
    let runbooks = runbooks::RunbooksPage::render();
    let exposition = Arc::new(exposition::Exposition::default());
    Router::new()
        .route("/", get(landing::page))
        .route("/runbooks", get(move || async move { runbooks.respond() }))
        .route(
            "/metrics",
            get(move |state, headers| metrics(state, headers, exposition)),
        )
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .merge(webhook)
        .merge(api)
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(from_fn_with_state(
            guard::BasicGuard {
                app: state.clone(),
                log: log.clone(),
            },
            guard::basic_auth,
        ))
        .with_state(state)
}

async fn metrics(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    exposition: Arc<exposition::Exposition>,
) -> Response {
    // The responder's live counters, then the collectors' snapshot, then the
    // end marker: built once per change, see `exposition`.
    let (format, content_type) = if negotiate::wants_text_format(&headers) {
        (exposition::Format::Text, negotiate::TEXT_CONTENT_TYPE)
    } else {
        (exposition::Format::OpenMetrics, OPENMETRICS_CONTENT_TYPE)
    };
    let changes = state.live.changes();
    match exposition.body(state.runtime.snapshot(), &state.registry, changes, format) {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => WebError::internal("encoding metrics failed", e).into_response(),
    }
}

async fn healthy() -> &'static str {
    "Healthy\n"
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.runtime.ready() {
        (StatusCode::OK, "Ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the first collection is still running\n",
        )
            .into_response()
    }
}

/// Escapes text for HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
