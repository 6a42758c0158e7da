//! The one error type of the HTTP layer: every handler's refusal or failure
//! becomes a response here.
//!
//! A client's mistake gets a message that says what to change. A failure of
//! ours gets a generic message, and its cause is logged once, here: internal
//! error text never reaches a client.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::Refusal;

/// What a 401 for basic auth asks the client for.
const BASIC_CHALLENGE: &str = "Basic realm=\"caretaker\", charset=\"UTF-8\"";

/// What a handler answers instead of its result.
#[derive(Debug)]
pub enum WebError {
    /// 400: the request cannot be taken as it is.
    BadRequest(String),
    /// 404: what the request names does not exist.
    NotFound(String),
    /// 401/403: the request did not authenticate (see [`super::guard`]).
    Refused(Refusal),
    /// 429: the client must wait `retry_after_seconds`.
    TooManyRequests {
        retry_after_seconds: u64,
        message: String,
    },
    /// 503: caretaker cannot take the request now; retrying later may work.
    Unavailable(&'static str),
    /// 500: our failure; the client sees `public`, the log the cause.
    Internal { public: &'static str, cause: String },
}

impl WebError {
    /// Our failure: `public` for the client, `cause` for the log only.
    pub fn internal(public: &'static str, cause: impl std::fmt::Display) -> WebError {
        WebError::Internal {
            public,
            cause: cause.to_string(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
            }
            WebError::NotFound(message) => {
                (StatusCode::NOT_FOUND, format!("{message}\n")).into_response()
            }
            WebError::Refused(refusal) if refusal.is_basic() => (
                refusal.status(),
                [(header::WWW_AUTHENTICATE, BASIC_CHALLENGE)],
                refusal.message(),
            )
                .into_response(),
            WebError::Refused(refusal) => (refusal.status(), refusal.message()).into_response(),
            WebError::TooManyRequests {
                retry_after_seconds,
                message,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_seconds.to_string())],
                format!("{message}\n"),
            )
                .into_response(),
            WebError::Unavailable(message) => {
                (StatusCode::SERVICE_UNAVAILABLE, format!("{message}\n")).into_response()
            }
            WebError::Internal { public, cause } => {
                tracing::error!(error = %cause, "{public}");
                (StatusCode::INTERNAL_SERVER_ERROR, format!("{public}\n")).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: WebError) -> (StatusCode, String) {
        let response = e.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn our_failures_answer_a_generic_message_without_their_cause() {
        let e = WebError::internal("internal error", "disk I/O error at /secret/state.db");
        let (status, body) = answer(e).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, "internal error\n");
    }

    #[tokio::test]
    async fn a_client_mistake_says_what_to_change() {
        let (status, body) = answer(WebError::BadRequest("say which database".into())).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::BAD_REQUEST, "say which database\n")
        );
    }
}
