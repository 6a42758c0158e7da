//! One SQLite value in an archive, and its JSON form.
//!
//! SQLite keeps a type per value, not per column, so each value is written
//! with its own type: integers and reals as JSON numbers (serde_json writes
//! whole reals as `1.0`, so they read back as reals), text as strings, NULL as
//! `null`, and the rest as one-key objects: `{"hex":..}` for blobs,
//! `{"text_hex":..}` for text that is not UTF-8 (SQLite does not check) and
//! `{"real":"inf"}` for infinities, which JSON numbers cannot hold.
//!
//! A real is written in the shortest form that names its exact bits, and read
//! back with serde_json's `float_roundtrip` parser: its default one is faster
//! but can be a unit in the last place off, and a restore must give back the
//! bytes the prune took.

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use serde_json::{json, Value as Json};

/// One SQLite value, exactly as it was stored.
#[derive(Debug, Clone, PartialEq)]
pub enum ArchiveValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    /// Text whose bytes are not UTF-8 (SQLite does not check).
    TextBytes(Vec<u8>),
    Blob(Vec<u8>),
}

impl From<ValueRef<'_>> for ArchiveValue {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Self::Null,
            ValueRef::Integer(i) => Self::Integer(i),
            ValueRef::Real(f) => Self::Real(f),
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(s) => Self::Text(s.to_string()),
                Err(_) => Self::TextBytes(t.to_vec()),
            },
            ValueRef::Blob(b) => Self::Blob(b.to_vec()),
        }
    }
}

impl ToSql for ArchiveValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null => ValueRef::Null,
            Self::Integer(i) => ValueRef::Integer(*i),
            Self::Real(f) => ValueRef::Real(*f),
            Self::Text(s) => ValueRef::Text(s.as_bytes()),
            Self::TextBytes(b) => ValueRef::Text(b),
            Self::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl ArchiveValue {
    pub(super) fn to_json(&self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::Integer(i) => json!(i),
            // serde_json writes whole reals as `1.0`, so they read back as reals.
            Self::Real(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Json::Number(n),
                None => json!({ "real": if *f > 0.0 { "inf" } else { "-inf" } }),
            },
            Self::Text(s) => Json::String(s.clone()),
            Self::TextBytes(b) => json!({ "text_hex": to_hex(b) }),
            Self::Blob(b) => json!({ "hex": to_hex(b) }),
        }
    }

    pub(super) fn from_json(v: &Json) -> Option<Self> {
        Some(match v {
            Json::Null => Self::Null,
            Json::Number(n) if n.is_f64() => Self::Real(n.as_f64()?),
            Json::Number(n) => Self::Integer(n.as_i64()?),
            Json::String(s) => Self::Text(s.clone()),
            Json::Object(o) if o.len() == 1 => match o.iter().next()? {
                (k, Json::String(h)) if k == "hex" => Self::Blob(from_hex(h)?),
                (k, Json::String(h)) if k == "text_hex" => Self::TextBytes(from_hex(h)?),
                (k, Json::String(r)) if k == "real" && r == "inf" => Self::Real(f64::INFINITY),
                (k, Json::String(r)) if k == "real" && r == "-inf" => Self::Real(f64::NEG_INFINITY),
                _ => return None,
            },
            _ => return None,
        })
    }
}

pub(super) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    text
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}
