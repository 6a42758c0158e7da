//! The web config file as written: the YAML that Prometheus exporters take
//! with `--web.config.file` (the exporter toolkit's format), so one file and
//! one habit serve node_exporter and caretaker alike.
//!
//! Unknown keys are errors, including the toolkit's keys caretaker does not
//! implement (`cipher_suites`, `curve_preferences`, ...): a setting that
//! would be silently ignored is worse than a refusal.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebFile {
    #[serde(default)]
    pub tls_server_config: Option<TlsFile>,
    #[serde(default)]
    pub http_server_config: Option<HttpFile>,
    /// User name to bcrypt hash.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub client_auth_type: Option<ClientAuth>,
    pub client_ca_file: Option<String>,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpFile {
    /// Response headers added to every answer.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The toolkit's `client_auth_type` values (Go's `tls.ClientAuthType` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ClientAuth {
    NoClientCert,
    /// Asks for a certificate, takes any or none, checks nothing.
    RequestClientCert,
    /// Requires a certificate, checks nothing about it.
    RequireAnyClientCert,
    /// Takes none, or one that `client_ca_file` signed.
    VerifyClientCertIfGiven,
    /// Requires one that `client_ca_file` signed.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::NoClientCert => "NoClientCert",
            ClientAuth::RequestClientCert => "RequestClientCert",
            ClientAuth::RequireAnyClientCert => "RequireAnyClientCert",
            ClientAuth::VerifyClientCertIfGiven => "VerifyClientCertIfGiven",
            ClientAuth::RequireAndVerifyClientCert => "RequireAndVerifyClientCert",
        }
    }

    /// Whether certificates are checked against `client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// The toolkit's version names; rustls implements only the last two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TlsVersion {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

/// The headers the toolkit lets a web config set (and caretaker too).
pub(super) const ALLOWED_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

/// Parses the YAML text; the error names the line and column.
pub(super) fn parse(text: &str) -> Result<WebFile, String> {
    if text.trim().is_empty() {
        return Ok(WebFile::default());
    }
    serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toolkit_format_parses() {
        let file = parse(
            "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\nbasic_auth_users:\n  prometheus: $2y$10$abc\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        )
        .unwrap();
        let tls = file.tls_server_config.unwrap();
        assert_eq!(tls.cert_file.as_deref(), Some("a.crt"));
        assert_eq!(
            tls.client_auth_type,
            Some(ClientAuth::RequireAndVerifyClientCert)
        );
        assert_eq!(tls.min_version, Some(TlsVersion::TLS13));
        assert_eq!(file.basic_auth_users["prometheus"], "$2y$10$abc");
        assert_eq!(file.http_server_config.unwrap().headers.len(), 1);
    }

    #[test]
    fn unknown_keys_and_values_are_errors_with_a_position() {
        let e = parse("tls_server_config:\n  cert_file: a\n  cipher_suites: [x]\n").unwrap_err();
        assert!(e.contains("cipher_suites") && e.contains("line 3"), "{e}");
        let e = parse("tls_server_config:\n  client_auth_type: Sometimes\n").unwrap_err();
        assert!(e.contains("Sometimes"), "{e}");
        assert!(parse("basic_auth_user: {}\n").is_err());
    }

    #[test]
    fn an_empty_file_means_plain_http_without_users() {
        let file = parse("\n").unwrap();
        assert!(file.tls_server_config.is_none() && file.basic_auth_users.is_empty());
    }
}
