//! Content negotiation of `/metrics`: OpenMetrics 1.0 (what Prometheus asks
//! for first, and the answer to `*/*` or no `Accept` at all), or the
//! Prometheus text format 0.0.4 for a client that asks for `text/plain` and
//! prefers it to OpenMetrics (`promtool check metrics`, older scrapers).
//!
//! prometheus-client writes OpenMetrics only; the text format is derived from
//! it line by line: no `# EOF` or `# UNIT`, counters' metadata under their
//! `_total` sample name, `info` families as gauges named `<name>_info`,
//! `unknown` as `untyped`, and no `_created` samples.

use axum::http::{header, HeaderMap};

/// The Prometheus text exposition format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the `Accept` header prefers the text format to OpenMetrics.
pub fn wants_text_format(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut openmetrics, mut text) = (0.0_f64, 0.0_f64);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|v| v.parse::<f64>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" | "*/*" | "application/*" => {
                openmetrics = openmetrics.max(q)
            }
            "text/plain" | "text/*" => text = text.max(q),
            _ => {}
        }
    }
    text > 0.0 && text > openmetrics
}

/// Rewrites OpenMetrics text as the Prometheus text format 0.0.4.
pub fn to_text_format(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // HELP comes before TYPE in OpenMetrics; its name depends on the type.
    let mut help: Option<(&str, &str)> = None;
    let mut counter: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_string(), kind),
                _ => (name.to_string(), "untyped"),
            };
            counter = (kind == "counter").then_some(rest.split(' ').next().unwrap_or(""));
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {}\n", unescape_quote(text)));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue; // # UNIT, # EOF
        }
        if let Some(base) = counter {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            if line[..name_end] == format!("{base}_created") {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// OpenMetrics escapes `"` in help text; the text format does not.
fn unescape_quote(text: &str) -> String {
    text.replace("\\\"", "\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, value.parse().expect("header"));
        h
    }

    #[test]
    fn prometheus_gets_openmetrics_and_text_clients_get_text() {
        assert!(!wants_text_format(&HeaderMap::new()));
        assert!(!wants_text_format(&accept("*/*")));
        assert!(wants_text_format(&accept("text/plain;version=0.0.4")));
        assert!(wants_text_format(&accept("text/plain")));
        let prometheus3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert!(!wants_text_format(&accept(prometheus3)));
        let prometheus2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(!wants_text_format(&accept(prometheus2)));
        assert!(wants_text_format(&accept(
            "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
        )));
    }

    #[test]
    fn counters_and_info_families_are_renamed() {
        let om = "# HELP a_requests Requests \\\"seen\\\".\n# TYPE a_requests counter\na_requests_total{code=\"200\"} 3\na_requests_created 1.0\n# HELP a_build Build.\n# TYPE a_build info\na_build_info{version=\"1\"} 1\n# TYPE a_up gauge\n# UNIT a_up ratio\na_up 1\n# EOF\n";
        let text = to_text_format(om);
        assert_eq!(
            text,
            "# HELP a_requests_total Requests \"seen\".\n# TYPE a_requests_total counter\na_requests_total{code=\"200\"} 3\n# HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{version=\"1\"} 1\n# TYPE a_up gauge\na_up 1\n"
        );
    }
}
