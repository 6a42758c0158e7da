//! Size limits on what an alert can write into the state database.
//!
//! Every field of a webhook payload is chosen by whoever can post it, and the
//! state database keeps rows for `responder.history_retention`. Identifiers
//! (fingerprints, startsAt, job keys) that are too long are replaced by a
//! prefix and a hash of the whole, so two different long values stay
//! different; label values are cut with a marker, and only so many labels kept.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The longest fingerprint or startsAt stored as it is.
pub const MAX_ID: usize = 128;
/// The longest job key stored as it is.
pub const MAX_KEY: usize = 1024;
/// The longest label value stored as it is.
pub const MAX_LABEL_VALUE: usize = 1024;
/// The most labels stored for one job.
pub const MAX_LABELS: usize = 32;
/// Appended to a label value that was cut.
pub const CUT_MARKER: &str = "…[truncated]";

/// `text` if it is at most `max` bytes, else its first bytes and a hash.
fn identifier(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let digest = format!("{:x}", Sha256::digest(text.as_bytes()));
    let keep = floor_char_boundary(text, max - 1 - 32);
    format!("{}#{}", &text[..keep], &digest[..32])
}

/// A fingerprint or startsAt value, bounded to [`MAX_ID`] bytes.
pub fn fingerprint(text: &str) -> String {
    identifier(text, MAX_ID)
}

/// A job key, bounded to [`MAX_KEY`] bytes.
pub fn key(text: String) -> String {
    if text.len() <= MAX_KEY {
        text
    } else {
        identifier(&text, MAX_KEY)
    }
}

/// A label value, cut at [`MAX_LABEL_VALUE`] bytes with [`CUT_MARKER`].
pub fn label_value(text: &str) -> String {
    if text.len() <= MAX_LABEL_VALUE {
        return text.to_string();
    }
    let keep = floor_char_boundary(text, MAX_LABEL_VALUE);
    format!("{}{CUT_MARKER}", &text[..keep])
}

/// At most [`MAX_LABELS`] labels (in name order), names and values bounded.
pub fn labels<'a>(
    labels: impl Iterator<Item = (&'a String, &'a String)>,
) -> BTreeMap<String, String> {
    labels
        .take(MAX_LABELS)
        .map(|(k, v)| (label_value(k), label_value(v)))
        .collect()
}

/// The largest char boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut i = at.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_identifiers_stay_distinct_and_bounded() {
        assert_eq!(fingerprint("abc"), "abc");
        let a = "é".repeat(500) + "a";
        let b = "é".repeat(500) + "b";
        assert!(fingerprint(&a).len() <= MAX_ID);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&a));
        assert!(key("k".repeat(5000)).len() <= MAX_KEY);
    }

    #[test]
    fn long_label_values_are_cut_with_a_marker() {
        let v = label_value(&"x".repeat(10_000));
        assert!(v.ends_with(CUT_MARKER));
        assert_eq!(v.len(), MAX_LABEL_VALUE + CUT_MARKER.len());
        let many: BTreeMap<String, String> = (0..100)
            .map(|i| (format!("l{i:03}"), "v".to_string()))
            .collect();
        assert_eq!(labels(many.iter()).len(), MAX_LABELS);
    }
}
