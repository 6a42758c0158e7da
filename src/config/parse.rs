//! Reading the TOML text into the file's serde types, with every error it
//! can find at once.
//!
//! toml's parser recovers after a syntax error, so all of them are reported.
//! Deserializing stops at its first problem (an unknown key, a value of the
//! wrong type, a missing field); when it fails, each top-level table and
//! each `[[...]]` entry is deserialized again on its own, so one mistake per
//! section is reported rather than one per file.

use serde::Deserialize;
use toml::de::{DeArray, DeTable, DeValue, Deserializer, Error};
use toml::Spanned;

/// Parses and deserializes `text`, or returns its errors in file order.
pub(super) fn parse<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, Vec<Error>> {
    let (root, mut syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        syntax.sort_by_key(|e| e.span().map(|s| s.start));
        return Err(syntax);
    }
    let first = match T::deserialize(Deserializer::from(root.clone())) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let mut errors = Vec::new();
    for (key, value) in root.get_ref() {
        let pieces = match value.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .map(|item| {
                    let one: DeArray = std::iter::once(item.clone()).collect();
                    Spanned::new(value.span(), DeValue::Array(one))
                })
                .collect(),
            _ => vec![value.clone()],
        };
        for piece in pieces {
            let mut table = DeTable::new();
            table.insert(key.clone(), piece);
            if let Err(e) = T::deserialize(Deserializer::from(Spanned::new(root.span(), table))) {
                let same = |o: &Error| o.span() == e.span() && o.message() == e.message();
                if !errors.iter().any(same) {
                    errors.push(e);
                }
            }
        }
    }
    if errors.is_empty() {
        errors.push(first);
    }
    errors.sort_by_key(|e| e.span().map(|s| s.start));
    Err(errors)
}
