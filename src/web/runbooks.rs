//! `GET /runbooks`: docs/runbooks.md as one HTML page, so the `runbook_url` of
//! every shipped alert opens on the caretaker that raised it
//! (`http://<instance>/runbooks#<alert in lower case>`, see the rules files).
//!
//! The markdown is compiled into the binary, so the page always describes the
//! caretaker that serves it. It is rendered once, when the router is built.
//! Each heading gets the anchor GitHub gives it, so the same fragments work
//! here, on a published copy and in the file's own links.
//!
//! Anyone who reaches the port may read it, like the landing page: it holds
//! the repository's text and nothing from the configuration or the state.
//! The page is self-contained (inline style, no script, nothing fetched);
//! raw HTML in the markdown is shown as text, and the response's
//! Content-Security-Policy forbids scripts and every fetch besides.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

use super::escape;

/// The runbooks, as the repository has them.
const MARKDOWN: &str = include_str!("../../docs/runbooks.md");

/// The page may use its own inline style and nothing else.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/// The rendered page, cheap to clone into each response.
#[derive(Clone)]
pub struct RunbooksPage(Bytes);

impl RunbooksPage {
    /// Renders docs/runbooks.md.
    pub fn render() -> RunbooksPage {
        RunbooksPage(Bytes::from(page(MARKDOWN)))
    }

    pub fn respond(&self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            self.0.clone(),
        )
            .into_response()
    }
}

/// The whole HTML document for `markdown`.
fn page(markdown: &str) -> String {
    let mut body = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut body, events(markdown).into_iter());
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>caretaker runbooks</title>
<style>
body {{ font-family: system-ui, sans-serif; line-height: 1.5; color: #222; max-width: 60em; margin: 2em auto; padding: 0 1em; }}
nav {{ font-size: .9em; margin-bottom: 1em; }}
h2 {{ border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }}
h3 {{ margin-top: 1.8em; }}
:target {{ background: #fff6cc; }}
code {{ font-family: ui-monospace, monospace; font-size: .92em; background: #f3f3f3; padding: .05em .25em; border-radius: 3px; }}
pre {{ background: #f3f3f3; padding: .7em 1em; overflow-x: auto; border-radius: 4px; }}
pre code {{ background: none; padding: 0; }}
table {{ border-collapse: collapse; margin: 1em 0; display: block; overflow-x: auto; }}
td, th {{ border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }}
</style></head>
<body>
<nav><a href="/">caretaker</a> {version} · runbooks</nav>
<main>
{body}</main>
</body></html>
"#,
        version = escape(env!("CARGO_PKG_VERSION")),
    )
}

/// The markdown's events, with an anchor on every heading and raw HTML
/// turned into text.
fn events(markdown: &str) -> Vec<Event<'_>> {
    let mut out = Vec::new();
    let mut slugs = Slugs::default();
    // A heading's events wait for its end, when its whole text is known.
    let mut heading: Option<(Tag, Vec<Event>)> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        let event = match event {
            Event::Html(html) | Event::InlineHtml(html) => Event::Text(html),
            other => other,
        };
        match event {
            Event::Start(tag @ Tag::Heading { .. }) => heading = Some((tag, Vec::new())),
            Event::End(end @ TagEnd::Heading(_)) => {
                if let Some((tag, inner)) = heading.take() {
                    out.push(Event::Start(with_anchor(tag, &mut slugs, &inner)));
                    out.extend(inner);
                }
                out.push(Event::End(end));
            }
            event => match heading.as_mut() {
                Some((_, inner)) => inner.push(event),
                None => out.push(event),
            },
        }
    }
    out
}

/// A heading tag with GitHub's anchor for its text.
fn with_anchor<'a>(tag: Tag<'a>, slugs: &mut Slugs, inner: &[Event]) -> Tag<'a> {
    match tag {
        Tag::Heading {
            level,
            classes,
            attrs,
            ..
        } => Tag::Heading {
            level,
            id: Some(CowStr::from(slugs.next(&text_of(inner)))),
            classes,
            attrs,
        },
        other => other,
    }
}

/// The plain text of a heading's events.
fn text_of(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
            _ => None,
        })
        .collect()
}

/// GitHub's heading anchors: lower case, punctuation dropped, each space a
/// `-`; a repeated anchor gets `-1`, `-2`, ... in order.
#[derive(Default)]
struct Slugs {
    seen: HashMap<String, usize>,
}

impl Slugs {
    fn next(&mut self, heading: &str) -> String {
        let base = slug(heading);
        let mut anchor = base.clone();
        while self.seen.contains_key(&anchor) {
            let count = self.seen.entry(base.clone()).or_insert(0);
            *count += 1;
            anchor = format!("{base}-{count}");
        }
        self.seen.insert(anchor.clone(), 0);
        anchor
    }
}

/// One heading's anchor, before de-duplication.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_githubs() {
        assert_eq!(slug("CaretakerDatabaseDown"), "caretakerdatabasedown");
        assert_eq!(slug("How caretaker responds"), "how-caretaker-responds");
        assert_eq!(slug("caretaker itself"), "caretaker-itself");
        assert_eq!(slug("Step 1: `backup` (fast)"), "step-1-backup-fast");
        assert_eq!(slug("a_b -- c"), "a_b----c");
        let html = page("# T\n## Same\n## Same\n## Same-1\n### `code` & <b>\n");
        for id in ["t", "same", "same-1", "same-1-1", "code--b"] {
            assert!(html.contains(&format!(" id=\"{id}\"")), "{id} in {html}");
        }
    }

    #[test]
    fn markup_in_the_markdown_is_shown_not_run() {
        let html = page(
            "# x\n\n<script>alert(1)</script>\n\nText <img src=x onerror=alert(1)> and `<b>`.\n\n[l](#x \"t\\\"q\")\n",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("<code>&lt;b&gt;</code>"), "{html}");
        assert!(html.contains("title=\"t&quot;q\""), "{html}");
    }

    #[test]
    fn the_shipped_runbooks_render_with_their_tables_and_every_link_target() {
        let html = page(MARKDOWN);
        assert!(html.contains("<table>"), "the summary table renders");
        assert!(html.contains(" id=\"caretakerdatabasedown\""));
        for (at, _) in MARKDOWN.match_indices("](#") {
            let anchor = &MARKDOWN[at + 3..];
            let anchor = &anchor[..anchor.find(')').unwrap_or(anchor.len())];
            assert!(
                html.contains(&format!(" id=\"{anchor}\"")),
                "link #{anchor} has no target"
            );
        }
    }
}
