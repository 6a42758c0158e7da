//! `[web] heartbeat_url`: the dead man's switch caretaker requests while all
//! is well (see `daemon::heartbeat`).
//!
//! The URL is a credential: a healthchecks.io or Dead Man's Snitch address is
//! its own secret, so whoever knows it can report "all is well" for us. It is
//! kept in [`HeartbeatUrl`], whose `Debug` hides it, and no error here quotes it.

use std::fmt;

use toml::Spanned;

/// An `http` or `https` URL that never prints itself.
#[derive(Clone, PartialEq)]
pub struct HeartbeatUrl(reqwest::Url);

impl HeartbeatUrl {
    /// The URL, to request it; never to log.
    pub fn url(&self) -> &reqwest::Url {
        &self.0
    }
}

impl fmt::Debug for HeartbeatUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeartbeatUrl(<hidden>)")
    }
}

/// Checks `web.heartbeat_url`; an error carries the offset of the value and a
/// message that does not repeat it.
pub(super) fn resolve(
    raw: Option<&Spanned<String>>,
) -> Result<Option<HeartbeatUrl>, (usize, String)> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let at = raw.span().start;
    let url = reqwest::Url::parse(raw.get_ref().trim())
        .map_err(|e| (at, format!("web.heartbeat_url is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err((
            at,
            "web.heartbeat_url must be an http:// or https:// URL with a host".to_string(),
        ));
    }
    Ok(Some(HeartbeatUrl(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spanned(text: &str) -> Spanned<String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            url: Spanned<String>,
        }
        let doc: Doc = toml::from_str(&format!("url = {text:?}")).expect("toml");
        doc.url
    }

    #[test]
    fn accepts_http_and_https_and_never_prints_the_url() {
        for text in ["https://hc-ping.com/0e1f-secret", "http://127.0.0.1:9/ping"] {
            let url = resolve(Some(&spanned(text))).expect("valid").expect("set");
            assert_eq!(url.url().as_str().trim_end_matches('/'), text);
            let shown = format!("{url:?}");
            assert!(
                !shown.contains("secret") && !shown.contains("127.0.0.1"),
                "{shown}"
            );
        }
        assert_eq!(resolve(None), Ok(None));
    }

    #[test]
    fn refuses_other_schemes_and_text_without_quoting_it() {
        for text in [
            "ftp://host/secret",
            "file:///secret",
            "secret-not-a-url",
            "mailto:secret@x",
        ] {
            let (_, message) = resolve(Some(&spanned(text))).expect_err(text);
            assert!(!message.contains("secret"), "{message}");
            assert!(message.contains("web.heartbeat_url"), "{message}");
        }
    }
}
