//! Bounding label values: keep the top N by count, fold the rest into `other`.
//!
//! Pattern types, categories and agent names come from the application's
//! data; without a bound a misbehaving writer could create unlimited series.
//! At `detail = "summary"` these breakdowns keep no value at all: their
//! groups are summed into one series without the label.

use crate::config::Detail;

/// The label value for NULL or empty text.
pub const NONE: &str = "none";
/// The label value that collects everything past the limit.
pub const OTHER: &str = "other";

/// Maps NULL and empty to `none`.
pub fn label_value(raw: Option<String>) -> String {
    match raw {
        Some(s) if !s.is_empty() => s,
        _ => NONE.to_string(),
    }
}

/// Keeps the `limit` keys with the largest weight; every other key maps to
/// `other`. Returns the kept keys; ties break by name so output is stable.
pub fn top_keys(mut weights: Vec<(String, f64)>, limit: usize) -> Vec<String> {
    weights.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    weights.into_iter().take(limit).map(|(k, _)| k).collect()
}

/// The label to use for `key` given the kept keys.
pub fn fold<'a>(key: &'a str, kept: &[String]) -> &'a str {
    if kept.iter().any(|k| k == key) {
        key
    } else {
        OTHER
    }
}

/// How many values a breakdown label (pattern type, category, agent, task
/// type) keeps: at `summary` none, so that every group folds into one.
pub fn breakdown_limit(detail: Detail, label_limit: usize) -> usize {
    match detail {
        Detail::Full => label_limit,
        Detail::Summary => 0,
    }
}

/// The breakdown label `key=value`, or no label at `summary` (where the one
/// group left is the sum of them all).
pub fn breakdown(detail: Detail, key: &'static str, value: String) -> Vec<(&'static str, String)> {
    match detail {
        Detail::Full => vec![(key, value)],
        Detail::Summary => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_largest_and_folds_the_rest() {
        let w = vec![
            ("a".into(), 1.0),
            ("b".into(), 5.0),
            ("c".into(), 3.0),
            ("d".into(), 3.0),
        ];
        let kept = top_keys(w, 2);
        assert_eq!(kept, vec!["b".to_string(), "c".to_string()]);
        assert_eq!(fold("d", &kept), OTHER);
        assert_eq!(fold("b", &kept), "b");
    }

    #[test]
    fn null_and_empty_become_none() {
        assert_eq!(label_value(None), NONE);
        assert_eq!(label_value(Some(String::new())), NONE);
        assert_eq!(label_value(Some("x".into())), "x");
    }
}
