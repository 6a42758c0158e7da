//! The one place where requests are authenticated.
//!
//! With `basic_auth_users` in the web config file, a layer over every route
//! ([`basic_auth`]) asks each request for a user and password first. A route
//! layer then checks the bearer token of the webhook and the API
//! ([`authenticate`]), so those need both when both are configured. Both
//! look only at headers, before any body extractor runs, so an
//! unauthenticated client never makes caretaker read (or buffer) a body. Refusals are counted on every request but logged at
//! most once per [`REFUSAL_LOG_EVERY`], with the number left unsaid, so a
//! flood of bad requests cannot flood the log either.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::{self, Refusal, Scope};
use super::{AppState, WebError};
use crate::responder::metrics::labels;

/// At most one refusal warning per this interval.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Rate-limits the refusal warning.
#[derive(Debug, Default)]
pub struct RefusalLog {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RefusalLog {
    /// Whether to log now, and how many refusals went unlogged before this one.
    fn admit(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if now.duration_since(at) < REFUSAL_LOG_EVERY => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed))
            }
        }
    }
}

/// What the authenticating layer of one group of routes needs.
#[derive(Clone)]
pub struct Guard {
    pub app: Arc<AppState>,
    pub scope: Scope,
    pub log: Arc<RefusalLog>,
}

/// Lets the request through with its [`auth::Credential`] as an extension,
/// or answers the refusal without touching the body.
pub async fn authenticate(
    State(guard): State<Guard>,
    mut request: Request,
    next: Next,
) -> Response {
    let credentials = guard.app.runtime.credentials();
    let refusal = match auth::check(&credentials, guard.scope, request.headers(), request.uri()) {
        Ok(credential) => {
            request.extensions_mut().insert(credential);
            return next.run(request).await;
        }
        Err(refusal) => refusal,
    };
    refuse(&guard.app, Some(guard.scope), &guard.log, &request, refusal)
}

/// What [`basic_auth`] needs.
#[derive(Clone)]
pub struct BasicGuard {
    pub app: Arc<AppState>,
    pub log: Arc<RefusalLog>,
}

/// Asks for `basic_auth_users` credentials when the web config file sets
/// users, and adds its `http_server_config.headers` to every answer.
pub async fn basic_auth(State(guard): State<BasicGuard>, request: Request, next: Next) -> Response {
    let security = guard.app.runtime.web_security();
    let mut response = match security.users() {
        None => next.run(request).await,
        Some(users) => {
            let presented = request
                .headers()
                .get_all(axum::http::header::AUTHORIZATION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(super::security::basic::credentials);
            match presented {
                None => refuse(
                    &guard.app,
                    None,
                    &guard.log,
                    &request,
                    Refusal::BasicMissing,
                ),
                Some((user, password)) if users.verify(&user, &password).await => {
                    next.run(request).await
                }
                Some(_) => refuse(&guard.app, None, &guard.log, &request, Refusal::BasicWrong),
            }
        }
    };
    for (name, value) in security.headers() {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// Counts, logs (rate-limited, never a credential) and answers a refusal.
fn refuse(
    app: &AppState,
    scope: Option<Scope>,
    log: &RefusalLog,
    request: &Request,
    refusal: Refusal,
) -> Response {
    let metrics = app.runtime.responder().metrics();
    metrics
        .touch()
        .auth_failures
        .get_or_create(&labels(&[("reason", refusal.reason())]))
        .inc();
    if scope == Some(Scope::Webhook) {
        metrics
            .touch()
            .webhook_requests
            .get_or_create(&labels(&[("code", refusal.status().as_str())]))
            .inc();
    }
    if let Some(suppressed) = log.admit(Instant::now()) {
        tracing::warn!(
            path = request.uri().path(),
            reason = refusal.reason(),
            suppressed,
            "request refused (suppressed: refusals not logged since the last warning)"
        );
    }
    WebError::Refused(refusal).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_once_per_interval_with_the_count_left_out() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(log.admit(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(log.admit(t0 + REFUSAL_LOG_EVERY), Some(5));
        assert_eq!(log.admit(t0 + REFUSAL_LOG_EVERY), None);
    }
}
