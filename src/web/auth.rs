//! Bearer-token authentication of caretaker's mutating and audit endpoints.
//!
//! Two credentials: `web.token_file` opens the webhook, `web.api_token_file`
//! the action API. Without an API token the webhook's token opens both (and
//! check-config and the startup log say so). Without a usable token, the
//! endpoints it guards answer 403 and say why. Tokens are compared as SHA-256
//! digests in constant time, so neither content nor length leaks through
//! timing. A token in the query string is refused: URLs end up in logs.

use std::path::Path;

use axum::http::{HeaderMap, StatusCode, Uri};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::WebConfig;

/// The shortest token caretaker accepts.
pub const MIN_TOKEN_LEN: usize = 16;

/// What check-config and the startup log say while one token opens both.
pub const SHARED_CREDENTIAL_WARNING: &str = "web.token_file opens both the webhook and the action API (which runs any action by hand); set web.api_token_file to give the API its own token";

/// The digest of a configured token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; 32]);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    pub fn from_secret(secret: &str) -> Token {
        Token(Sha256::digest(secret.as_bytes()).into())
    }

    fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.0.ct_eq(&digest).into()
    }
}

/// Why a configured token file cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// No file is configured.
    NotConfigured,
    /// The file is missing or unreadable.
    Unreadable,
    /// The token is shorter than [`MIN_TOKEN_LEN`].
    TooShort,
}

/// Reads a token file; warns when others may read it.
pub fn load_token(path: &Path) -> Result<Token, (TokenProblem, String)> {
    use std::os::unix::fs::PermissionsExt;
    let unreadable = |e: std::io::Error| {
        (
            TokenProblem::Unreadable,
            format!("cannot read token file {}: {e}", path.display()),
        )
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err((
            TokenProblem::Unreadable,
            format!("token file {} is not a regular file", path.display()),
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "the token file is readable by other users; chmod 600 it");
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let secret = text.trim();
    if secret.len() < MIN_TOKEN_LEN {
        return Err((
            TokenProblem::TooShort,
            format!(
                "token in {} is shorter than {MIN_TOKEN_LEN} characters",
                path.display()
            ),
        ));
    }
    Ok(Token::from_secret(secret))
}

/// Which credential a request presented (named in the audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    WebhookToken,
    ApiToken,
}

impl Credential {
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::WebhookToken => "webhook_token",
            Credential::ApiToken => "api_token",
        }
    }
}

/// Which endpoints a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `POST /hooks/alertmanager`.
    Webhook,
    /// `/api/v1/*`.
    Api,
}

/// The loaded credentials of one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    webhook: Result<Token, TokenProblem>,
    /// `None` when `web.api_token_file` is not set: the webhook's token opens the API.
    api: Option<Result<Token, TokenProblem>>,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            webhook: Err(TokenProblem::NotConfigured),
            api: None,
        }
    }
}

impl Credentials {
    /// Reads the token files of `web`; returns the credentials and, for each
    /// configured file that cannot be used, why (never the token itself).
    pub fn load(web: &WebConfig) -> (Credentials, Vec<String>) {
        let mut problems = Vec::new();
        let mut read = |path: &Path| {
            load_token(path).map_err(|(problem, message)| {
                problems.push(message);
                problem
            })
        };
        let webhook = match &web.token_file {
            Some(path) => read(path),
            None => Err(TokenProblem::NotConfigured),
        };
        let api = web.api_token_file.as_deref().map(&mut read);
        (Credentials { webhook, api }, problems)
    }

    /// Whether one credential opens both the webhook and the API.
    pub fn shared(&self) -> bool {
        self.api.is_none() && self.webhook.is_ok()
    }

    /// The token that opens `scope`, and the credential it stands for.
    fn for_scope(&self, scope: Scope) -> (Result<&Token, TokenProblem>, Credential) {
        match (scope, &self.api) {
            (Scope::Api, Some(api)) => (api.as_ref().map_err(|p| *p), Credential::ApiToken),
            _ => (
                self.webhook.as_ref().map_err(|p| *p),
                Credential::WebhookToken,
            ),
        }
    }
}

/// Why a request was refused (the `reason` label of auth failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoTokenConfigured,
    TokenUnreadable,
    TokenTooShort,
    TokenInQuery,
    Missing,
    Wrong,
    /// `basic_auth_users` are set and the request brought no `Basic` credentials.
    BasicMissing,
    /// The `Basic` user name or password is wrong.
    BasicWrong,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NoTokenConfigured => "no_token_configured",
            Refusal::TokenUnreadable => "token_unreadable",
            Refusal::TokenTooShort => "token_too_short",
            Refusal::TokenInQuery => "token_in_query",
            Refusal::Missing => "missing",
            Refusal::Wrong => "wrong",
            Refusal::BasicMissing => "basic_auth_missing",
            Refusal::BasicWrong => "basic_auth_wrong",
        }
    }

    /// Whether the client is asked for basic-auth credentials.
    pub fn is_basic(self) -> bool {
        matches!(self, Refusal::BasicMissing | Refusal::BasicWrong)
    }

    pub fn status(self) -> StatusCode {
        match self {
            Refusal::NoTokenConfigured | Refusal::TokenUnreadable | Refusal::TokenTooShort => {
                StatusCode::FORBIDDEN
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::NoTokenConfigured => {
                "caretaker has no token configured for this endpoint (web.token_file, web.api_token_file), so it is disabled\n"
            }
            Refusal::TokenUnreadable => {
                "caretaker cannot read the token file of this endpoint, so it is disabled; see caretaker's log\n"
            }
            Refusal::TokenTooShort => {
                "the token caretaker has configured for this endpoint is shorter than 16 characters, so it is disabled\n"
            }
            Refusal::TokenInQuery => "tokens are not accepted in the query string; send Authorization: Bearer <token>\n",
            Refusal::Missing => "missing Authorization: Bearer <token>\n",
            Refusal::Wrong => "invalid token\n",
            Refusal::BasicMissing => "missing Authorization: Basic <user:password>\n",
            Refusal::BasicWrong => "invalid user name or password\n",
        }
    }
}

/// The token of an `Authorization` header with the `Bearer` scheme, whose
/// name is case-insensitive (RFC 7235, section 2.1).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// Checks a request for `scope`; returns the credential it presented.
pub fn check(
    credentials: &Credentials,
    scope: Scope,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Credential, Refusal> {
    let (token, credential) = credentials.for_scope(scope);
    let token = token.map_err(|p| match p {
        TokenProblem::NotConfigured => Refusal::NoTokenConfigured,
        TokenProblem::Unreadable => Refusal::TokenUnreadable,
        TokenProblem::TooShort => Refusal::TokenTooShort,
    })?;
    let query = uri.query().unwrap_or("");
    if query.split('&').any(|kv| {
        matches!(
            kv.split('=').next(),
            Some("token" | "access_token" | "bearer")
        )
    }) {
        return Err(Refusal::TokenInQuery);
    }
    // With basic_auth_users set a request brings two Authorization headers,
    // one per scheme: the bearer token is whichever names `Bearer`.
    let presented = headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(bearer)
        .ok_or(Refusal::Missing)?;
    if token.matches(presented) {
        Ok(credential)
    } else {
        Err(Refusal::Wrong)
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
