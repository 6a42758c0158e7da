//! What lets caretaker face a network the way Prometheus exporters do: the
//! exporter toolkit's web config file (`--web.config.file`, `web.config_file`)
//! with TLS (optionally with client certificates), basic-auth users and extra
//! response headers.
//!
//! A [`WebSecurity`] is loaded whole and checked whole ([`file`] parses,
//! [`tls`] builds the rustls configuration, [`basic`] holds the users), so a
//! file with any problem is refused before it replaces the one in force. The
//! server loop asks for the current one at each new connection and the
//! request layer at each request; a reload swaps it for both.

pub mod basic;
mod file;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use rustls::ServerConfig;

pub use basic::BasicUsers;
pub use file::ClientAuth;
pub use tls::TlsSummary;

/// A web config file that cannot be used, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("web config file {}: {message}", file.display())]
pub struct WebConfigError {
    pub file: PathBuf,
    pub message: String,
}

/// The TLS, users and headers in force.
#[derive(Debug, Default)]
pub struct WebSecurity {
    /// The file these came from (`None`: plain HTTP, no users).
    pub source: Option<PathBuf>,
    tls: Option<(Arc<ServerConfig>, TlsSummary)>,
    users: Option<BasicUsers>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl WebSecurity {
    /// Plain HTTP, no users, no headers.
    pub fn plain() -> WebSecurity {
        WebSecurity::default()
    }

    /// Reads `path` when one is given (reads files: call off the async workers).
    pub fn load(path: Option<&Path>) -> Result<WebSecurity, WebConfigError> {
        let Some(path) = path else {
            return Ok(WebSecurity::plain());
        };
        let error = |message: String| WebConfigError {
            file: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| error(format!("cannot read the file: {e}")))?;
        let raw = file::parse(&text).map_err(error)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = match &raw.tls_server_config {
            Some(t) => tls::server_config(t, base).map_err(error)?,
            None => None,
        };
        let users = if raw.basic_auth_users.is_empty() {
            None
        } else {
            Some(BasicUsers::new(raw.basic_auth_users).map_err(error)?)
        };
        let mut headers = Vec::new();
        for (name, value) in raw
            .http_server_config
            .map(|h| h.headers)
            .unwrap_or_default()
        {
            if !file::ALLOWED_HEADERS
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&name))
            {
                return Err(error(format!(
                    "http_server_config.headers: {name:?} cannot be set (allowed: {})",
                    file::ALLOWED_HEADERS.join(", ")
                )));
            }
            let parsed = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            );
            match parsed {
                (Ok(n), Ok(v)) => headers.push((n, v)),
                _ => {
                    return Err(error(format!(
                    "http_server_config.headers: {name:?} has a value that is not a valid header"
                )))
                }
            }
        }
        Ok(WebSecurity {
            source: Some(path.to_path_buf()),
            tls,
            users,
            headers,
        })
    }

    /// The rustls configuration for new connections; `None` serves plain HTTP.
    pub fn tls(&self) -> Option<Arc<ServerConfig>> {
        self.tls.as_ref().map(|(c, _)| c.clone())
    }

    /// The basic-auth users; `None` lets every request past this check.
    pub fn users(&self) -> Option<&BasicUsers> {
        self.users.as_ref()
    }

    /// Headers added to every response.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// One line for the log: what a client must bring (no secret in it).
    pub fn describe(&self) -> String {
        let transport = match &self.tls {
            None => "plain HTTP".to_string(),
            Some((_, summary)) => format!(
                "TLS (client certificates: {}; server certificate valid until {})",
                summary.client_auth.as_str(),
                chrono::DateTime::from_timestamp(summary.not_after, 0)
                    .map_or_else(|| summary.not_after.to_string(), |t| t.to_rfc3339())
            ),
        };
        match &self.users {
            None => transport,
            Some(users) => format!("{transport}, basic auth for {} user(s)", users.len()),
        }
    }
}
