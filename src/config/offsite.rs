//! `[database.backup.offsite]`: where verified backups are copied off the
//! host, and to whom they are encrypted.
//!
//! Every backup on the same disk as its database dies with that disk; this
//! section names an object store (`s3://bucket/prefix`, or `file:///path` for
//! a mounted share) and the age recipients every upload is encrypted to.
//! Encryption is required unless `encrypt = false` is written out, so a
//! forgotten key never uploads a database in the clear.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;
use super::responder::Problem;

/// Where backups go off the host.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsiteConfig {
    pub location: OffsiteLocation,
    /// An S3-compatible endpoint (MinIO, R2, B2, Ceph, moto); requests are
    /// then path-style (`endpoint/bucket/key`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Plain HTTP to the endpoint: only for a local test server.
    pub allow_http: bool,
    /// An AWS-style credentials file; otherwise the standard `AWS_*`
    /// environment variables.
    pub credentials_file: Option<PathBuf>,
    pub encryption: Encryption,
    /// The age identity restore and verify decrypt with; never needed to upload.
    pub decrypt_identity_file: Option<PathBuf>,
    pub retention: Duration,
    pub monthly_retention: Duration,
}

/// The store and the prefix inside it.
#[derive(Debug, Clone, PartialEq)]
pub enum OffsiteLocation {
    /// `s3://bucket/prefix`
    S3 { bucket: String, prefix: String },
    /// `file:///path`: a folder (a mounted share).
    Folder(PathBuf),
}

/// To whom uploads are encrypted.
#[derive(Debug, Clone, PartialEq)]
pub enum Encryption {
    /// age X25519 recipients (`age1...`), each checked when the file is read.
    AgeRecipients(Vec<String>),
    /// `encrypt = false`, written out: uploads are plain zstd/gzip.
    Disabled,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileOffsite {
    url: Spanned<String>,
    endpoint: Option<Spanned<String>>,
    region: Option<String>,
    #[serde(default)]
    allow_http: bool,
    credentials_file: Option<String>,
    encrypt: Option<Spanned<bool>>,
    encrypt_to: Option<Spanned<Vec<String>>>,
    decrypt_identity_file: Option<String>,
    retention: Option<HumanDuration>,
    monthly_retention: Option<HumanDuration>,
}

/// Validates one `[database.backup.offsite]`; retention defaults to the
/// local backups' (`local_retention`, `local_monthly`).
pub(super) fn resolve_offsite(
    raw: &FileOffsite,
    base: &Path,
    local_retention: Duration,
    local_monthly: Duration,
    problems: &mut Vec<Problem>,
) -> OffsiteConfig {
    let path = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let location = match parse_url(raw.url.get_ref()) {
        Ok(l) => l,
        Err(msg) => {
            problems.push((Some(raw.url.span().start), msg));
            OffsiteLocation::Folder(PathBuf::new())
        }
    };
    if let Some(endpoint) = &raw.endpoint {
        let at = Some(endpoint.span().start);
        let text = endpoint.get_ref();
        if let Some(msg) = endpoint_problem(text, raw.allow_http) {
            problems.push((at, msg));
        }
        if matches!(location, OffsiteLocation::Folder(_)) {
            problems.push((
                at,
                "backup.offsite.endpoint applies to s3:// urls only".into(),
            ));
        }
    }
    let encryption = match (&raw.encrypt, &raw.encrypt_to) {
        (Some(e), Some(to)) if !*e.get_ref() => {
            problems.push((
                Some(to.span().start),
                "backup.offsite.encrypt_to is set but encrypt = false".into(),
            ));
            Encryption::Disabled
        }
        (Some(e), None) if !*e.get_ref() => Encryption::Disabled,
        (_, Some(to)) => {
            let at = Some(to.span().start);
            if to.get_ref().is_empty() {
                problems.push((at, "backup.offsite.encrypt_to names no recipient".into()));
            }
            for r in to.get_ref() {
                if age::x25519::Recipient::from_str(r).is_err() {
                    problems.push((
                        at,
                        format!(
                            "backup.offsite.encrypt_to: {r:?} is not an age recipient (age1...)"
                        ),
                    ));
                }
            }
            Encryption::AgeRecipients(to.get_ref().clone())
        }
        (e, None) => {
            let at = e.as_ref().map_or(raw.url.span().start, |e| e.span().start);
            problems.push((
                Some(at),
                "backup.offsite needs encrypt_to (age recipients), or encrypt = false written out"
                    .into(),
            ));
            Encryption::Disabled
        }
    };
    OffsiteConfig {
        location,
        endpoint: raw.endpoint.as_ref().map(|e| e.get_ref().clone()),
        region: raw.region.clone(),
        allow_http: raw.allow_http,
        credentials_file: raw.credentials_file.as_deref().map(path),
        encryption,
        decrypt_identity_file: raw.decrypt_identity_file.as_deref().map(path),
        retention: raw.retention.map_or(local_retention, |h| h.0),
        monthly_retention: raw.monthly_retention.map_or(local_monthly, |h| h.0),
    }
}

/// `s3://bucket/prefix` or `file:///absolute/path`.
fn parse_url(url: &str) -> Result<OffsiteLocation, String> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c);
        if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
            return Err(format!(
                "backup.offsite.url {url:?}: the bucket must be 3-63 lowercase letters, digits, '-' or '.'"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(format!(
                "backup.offsite.url {url:?}: the prefix must not contain . or .."
            ));
        }
        return Ok(OffsiteLocation::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') || rest.len() < 2 {
            return Err(format!(
                "backup.offsite.url {url:?}: file:// needs an absolute path (file:///path)"
            ));
        }
        return Ok(OffsiteLocation::Folder(PathBuf::from(rest)));
    }
    for scheme in ["gs://", "az://"] {
        if url.starts_with(scheme) {
            return Err(format!(
                "backup.offsite.url {url:?}: {scheme} is not supported yet (s3:// or file:///)"
            ));
        }
    }
    Err(format!(
        "backup.offsite.url {url:?} must start with s3:// or file:///"
    ))
}

/// Why `endpoint` cannot be used, if it cannot. Plain HTTP is accepted only
/// for a store on this host: over a network the requests' signatures and the
/// store's answers would travel unprotected.
fn endpoint_problem(endpoint: &str, allow_http: bool) -> Option<String> {
    let parsed = reqwest::Url::parse(endpoint).ok().filter(|u| u.has_host());
    match parsed.as_ref().map(|u| u.scheme()) {
        Some("https") => None,
        Some("http") if !allow_http => Some(format!(
            "backup.offsite.endpoint {endpoint:?} is plain HTTP: set allow_http = true (for a local test server only)"
        )),
        Some("http") if !parsed.as_ref().is_some_and(is_loopback) => Some(format!(
            "backup.offsite.endpoint {endpoint:?}: allow_http = true is accepted only for a store on this host (localhost, 127.0.0.0/8 or [::1]); use https:// for any other"
        )),
        Some("http") => None,
        _ => Some(format!(
            "backup.offsite.endpoint {endpoint:?} must be an http:// or https:// URL"
        )),
    }
}

/// Whether `url` names this host by loopback address or as `localhost`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://caretaker-backups/hosts/db1/"),
            Ok(OffsiteLocation::S3 {
                bucket: "caretaker-backups".into(),
                prefix: "hosts/db1".into()
            })
        );
        assert_eq!(
            parse_url("file:///mnt/share"),
            Ok(OffsiteLocation::Folder("/mnt/share".into()))
        );
        assert!(parse_url("file://relative").is_err());
        assert!(parse_url("s3://Bad_Bucket").is_err());
        assert!(parse_url("gs://b/p").unwrap_err().contains("not supported"));
        assert!(parse_url("ftp://x").is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(endpoint_problem("https://r2.example", false), None);
        assert!(endpoint_problem("http://127.0.0.1:9000", false).is_some());
        assert_eq!(endpoint_problem("http://127.0.0.1:9000", true), None);
        assert!(endpoint_problem("127.0.0.1:9000", true).is_some());
        assert!(endpoint_problem("http://", true).is_some());
        for local in [
            "http://localhost:9000",
            "http://127.0.0.2:9000",
            "http://[::1]:9000",
        ] {
            assert_eq!(endpoint_problem(local, true), None, "{local}");
        }
        for remote in [
            "http://10.0.0.5:9000",
            "http://minio.example.net:9000",
            "http://localhost.example.net",
            "http://[fd00::1]:9000",
        ] {
            let problem = endpoint_problem(remote, true).expect(remote);
            assert!(problem.contains("on this host"), "{remote}: {problem}");
        }
    }

    const RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    fn parse(offsite: &str) -> Result<crate::config::Config, crate::config::ConfigErrors> {
        let text = format!(
            "[[database]]\nname = \"m\"\npath = \"m.db\"\n[database.backup]\ndir = \"b\"\nretention = \"7d\"\n[database.backup.offsite]\n{offsite}"
        );
        crate::config::Config::parse(Path::new("/etc/caretaker/c.toml"), &text)
    }

    #[test]
    fn a_full_section_resolves() {
        let cfg = parse(&format!(
            "url = \"s3://caretaker-backups/hosts/db1\"\nendpoint = \"http://127.0.0.1:9000\"\nallow_http = true\nregion = \"us-east-1\"\ncredentials_file = \"aws\"\nencrypt_to = [\"{RECIPIENT}\"]\ndecrypt_identity_file = \"id.txt\"\nmonthly_retention = \"730d\"\n"
        ))
        .expect("valid");
        let backup = cfg.databases[0].backup.as_ref().expect("backup");
        let o = backup.offsite.as_ref().expect("offsite");
        assert_eq!(
            o.credentials_file.as_deref(),
            Some(Path::new("/etc/caretaker/aws"))
        );
        assert_eq!(
            o.encryption,
            Encryption::AgeRecipients(vec![RECIPIENT.into()])
        );
        assert_eq!(
            o.retention, backup.retention,
            "defaults to the local retention"
        );
        assert_eq!(o.monthly_retention, Duration::from_secs(730 * 86400));
    }

    #[test]
    fn problems_have_positions() {
        // Line 8 is the first line of the offsite section.
        let cases = [
            ("url = \"file:///x\"\n", 8, "encrypt_to"),
            (
                "url = \"file:///x\"\nencrypt_to = [\"age1nope\"]\n",
                9,
                "not an age recipient",
            ),
            ("url = \"s3://b\"\nencrypt = false\n", 8, "bucket"),
            (
                "url = \"s3://bkt\"\nencrypt = false\nendpoint = \"http://127.0.0.1:1\"\n",
                10,
                "allow_http",
            ),
            ("url = \"gs://bkt\"\nencrypt = false\n", 8, "not supported"),
            (
                &format!("url = \"s3://bkt\"\nencrypt = false\nencrypt_to = [\"{RECIPIENT}\"]\n"),
                10,
                "encrypt = false",
            ),
            (
                "url = \"s3://bkt\"\nencrypt = false\nsecret = 1\n",
                10,
                "unknown field",
            ),
        ];
        for (section, line, words) in cases {
            let errors = parse(section).expect_err(section);
            let e = &errors.0[0];
            assert_eq!(e.line, Some(line), "{section}: {errors}");
            assert!(e.message.contains(words), "{section}: {errors}");
        }
        let ok = parse("url = \"file:///x\"\nencrypt = false\n").expect("encrypt = false");
        let o = ok.databases[0]
            .backup
            .as_ref()
            .and_then(|b| b.offsite.clone());
        assert_eq!(o.map(|o| o.encryption), Some(Encryption::Disabled));
    }
}
