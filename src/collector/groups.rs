//! Grouping rows by a column's value in memory, while reading a table in
//! storage order.
//!
//! SQLite's `GROUP BY` either walks an index (a random lookup per row) or
//! sorts every row; for the handful of groups the collectors publish, one
//! sequential scan into a hash map is several times faster. The keys follow
//! what the exporter shows: a column's text, with NULL and empty both
//! becoming the `none` label.

use std::collections::HashMap;

use rusqlite::types::ValueRef;

use super::labels::label_value;

/// Groups keyed by a column's value as text; NULL has its own slot. Looking
/// up an existing group allocates nothing.
#[derive(Default)]
pub struct Groups<T> {
    index: HashMap<Vec<u8>, usize>,
    groups: Vec<(Vec<u8>, T)>,
    null: Option<T>,
}

impl<T: Default> Groups<T> {
    pub fn get(&mut self, v: ValueRef<'_>) -> &mut T {
        let owned;
        let key: &[u8] = match v {
            ValueRef::Null => return self.null.get_or_insert_with(T::default),
            ValueRef::Text(b) | ValueRef::Blob(b) => b,
            ValueRef::Integer(i) => {
                owned = i.to_string();
                owned.as_bytes()
            }
            ValueRef::Real(r) => {
                owned = r.to_string();
                owned.as_bytes()
            }
        };
        let i = match self.index.get(key) {
            Some(&i) => i,
            None => {
                self.groups.push((key.to_vec(), T::default()));
                self.index.insert(key.to_vec(), self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        &mut self.groups[i].1
    }

    /// (label value, group) pairs; NULL and empty text both become `none`.
    pub fn into_labelled(self) -> Vec<(String, T)> {
        let text = self.groups.into_iter().map(|(k, v)| {
            (
                label_value(Some(String::from_utf8_lossy(&k).into_owned())),
                v,
            )
        });
        text.chain(self.null.map(|v| (label_value(None), v)))
            .collect()
    }
}

/// SQLite's numeric value of a column for `TOTAL`: text is read as a number
/// where it is one, anything else counts as 0.
pub fn number(v: ValueRef<'_>) -> f64 {
    match v {
        ValueRef::Integer(i) => i as f64,
        ValueRef::Real(r) => r,
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0.0),
        ValueRef::Null | ValueRef::Blob(_) => 0.0,
    }
}
