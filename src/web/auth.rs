//! Bearer-token authentication of caretaker's mutating and audit endpoints.
//!
//! The token is read from `web.token_file`; without one, every protected
//! endpoint answers 403 and says why. Tokens are compared as SHA-256 digests
//! in constant time, so neither content nor length leaks through timing. A
//! token in the query string is refused: URLs end up in logs.

use std::path::Path;

use axum::http::{HeaderMap, StatusCode, Uri};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The digest of the configured token.
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

/// Reads the token file; warns when others may read it.
pub fn load_token(path: &Path) -> Result<Token, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "token file {} is not a regular file",
            path.display()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "the token file is readable by other users; chmod 600 it");
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.len() < 16 {
        return Err(format!(
            "token in {} is shorter than 16 characters",
            path.display()
        ));
    }
    Ok(Token::from_secret(secret))
}

/// Why a request was refused (the `reason` label of auth failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoTokenConfigured,
    TokenInQuery,
    Missing,
    Wrong,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NoTokenConfigured => "no_token_configured",
            Refusal::TokenInQuery => "token_in_query",
            Refusal::Missing => "missing",
            Refusal::Wrong => "wrong",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Refusal::NoTokenConfigured => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::NoTokenConfigured => {
                "caretaker has no token configured (web.token_file), so every POST and API endpoint is disabled\n"
            }
            Refusal::TokenInQuery => "tokens are not accepted in the query string; send Authorization: Bearer <token>\n",
            Refusal::Missing => "missing Authorization: Bearer <token>\n",
            Refusal::Wrong => "invalid token\n",
        }
    }
}

/// Checks a request against the configured token.
pub fn check(token: Option<&Token>, headers: &HeaderMap, uri: &Uri) -> Result<(), Refusal> {
    let Some(token) = token else {
        return Err(Refusal::NoTokenConfigured);
    };
    let query = uri.query().unwrap_or("");
    if query.split('&').any(|kv| {
        matches!(
            kv.split('=').next(),
            Some("token" | "access_token" | "bearer")
        )
    }) {
        return Err(Refusal::TokenInQuery);
    }
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(Refusal::Missing)?;
    let presented = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(Refusal::Missing)?;
    if token.matches(presented.trim()) {
        Ok(())
    } else {
        Err(Refusal::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(
                axum::http::header::AUTHORIZATION,
                a.parse().expect("header"),
            );
        }
        h
    }

    #[test]
    fn only_the_right_bearer_token_passes() {
        let token = Token::from_secret("0123456789abcdef");
        let uri: Uri = "/hooks/alertmanager".parse().expect("uri");
        assert_eq!(
            check(
                Some(&token),
                &headers(Some("Bearer 0123456789abcdef")),
                &uri
            ),
            Ok(())
        );
        assert_eq!(
            check(
                Some(&token),
                &headers(Some("Bearer 0123456789abcdeX")),
                &uri
            ),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            check(Some(&token), &headers(Some("Bearer short")), &uri),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            check(Some(&token), &headers(Some("Basic abc")), &uri),
            Err(Refusal::Missing)
        );
        assert_eq!(
            check(Some(&token), &headers(None), &uri),
            Err(Refusal::Missing)
        );
        assert_eq!(
            check(None, &headers(Some("Bearer 0123456789abcdef")), &uri),
            Err(Refusal::NoTokenConfigured)
        );
        let q: Uri = "/hooks/alertmanager?token=0123456789abcdef"
            .parse()
            .expect("uri");
        assert_eq!(
            check(Some(&token), &headers(Some("Bearer 0123456789abcdef")), &q),
            Err(Refusal::TokenInQuery)
        );
    }
}
