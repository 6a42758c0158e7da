//! Seed 000's four pattern steps written out in Rust on plain rows: the
//! independent statement of what `tune_patterns` must do, which its tests
//! compare the database with row by row.

use std::collections::BTreeMap;

use rusqlite::types::Value;

use crate::tune_actions::Dump;

/// Column positions in the seed schema (`SELECT *` order).
pub const ID: usize = 0;
pub const TYPE: usize = 1;
pub const DATA: usize = 2;
pub const CONF: usize = 3;
pub const USAGE: usize = 4;
pub const LAST_USED: usize = 6;

#[derive(Debug, Default, PartialEq)]
pub struct ModelCounts {
    pub promoted: u64,
    pub demoted: u64,
    pub cleared: u64,
    pub removed: u64,
    pub kept_updated: u64,
    pub repointed: u64,
    pub deleted: u64,
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Real(f) => Some(*f),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

fn iso(v: &Value) -> Option<&str> {
    match v {
        Value::Text(s) if s.len() >= 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-' => {
            Some(s)
        }
        _ => None,
    }
}

/// Seed 000's four steps with the defaults, in Rust, on plain rows.
pub fn model(
    patterns: &mut Dump,
    embeddings: &mut Dump,
    demote_before: &str,
    clear_before: &str,
) -> ModelCounts {
    let mut c = ModelCounts::default();
    for row in patterns.values_mut() {
        if let (Value::Integer(u), Some(x)) = (&row[USAGE], num(&row[CONF])) {
            if *u > 100 && x < 0.95 {
                row[CONF] = Value::Real((x + 0.05).min(0.95));
                c.promoted += 1;
            }
        }
    }
    for row in patterns.values_mut() {
        if let (Some(s), Value::Integer(u), Some(x)) =
            (iso(&row[LAST_USED]), &row[USAGE], num(&row[CONF]))
        {
            if s < demote_before && *u < 5 && x > 0.3 {
                row[CONF] = Value::Real((x - 0.1).max(0.3));
                c.demoted += 1;
            }
        }
    }
    for row in patterns.values_mut() {
        if let (Some(s), Value::Integer(u)) = (iso(&row[LAST_USED]), &row[USAGE]) {
            if s < clear_before && *u < 5 {
                row[LAST_USED] = Value::Null;
                c.cleared += 1;
            }
        }
    }
    let mut groups: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (rowid, row) in patterns.iter() {
        if matches!(row[USAGE], Value::Integer(_)) {
            groups
                .entry(format!("{:?}\u{1}{:?}", row[TYPE], row[DATA]))
                .or_default()
                .push(*rowid);
        }
    }
    for mut members in groups.into_values().filter(|m| m.len() > 1) {
        let conf = |r: &i64| num(&patterns[r][CONF]).unwrap_or(f64::NEG_INFINITY);
        members.sort_by(|a, b| conf(b).total_cmp(&conf(a)).then(a.cmp(b)));
        let total: i64 = members
            .iter()
            .map(|r| match patterns[r][USAGE] {
                Value::Integer(u) => u,
                _ => 0,
            })
            .sum();
        let keeper_id = patterns[&members[0]][ID].clone();
        let removed_ids: Vec<Value> = members[1..]
            .iter()
            .map(|r| patterns[r][ID].clone())
            .collect();
        if !embeddings.values().any(|e| e[0] == keeper_id) {
            let moved = removed_ids.iter().find_map(|id| {
                embeddings
                    .iter()
                    .filter(|(_, e)| &e[0] == id)
                    .map(|(r, _)| *r)
                    .min()
            });
            if let Some(r) = moved {
                embeddings.get_mut(&r).expect("embedding")[0] = keeper_id.clone();
                c.repointed += 1;
            }
        }
        let before = embeddings.len();
        embeddings.retain(|_, e| !removed_ids.contains(&e[0]));
        c.deleted += (before - embeddings.len()) as u64;
        let keeper = patterns.get_mut(&members[0]).expect("keeper");
        if keeper[USAGE] != Value::Integer(total) {
            keeper[USAGE] = Value::Integer(total);
            c.kept_updated += 1;
        }
        for r in &members[1..] {
            patterns.remove(r);
            c.removed += 1;
        }
    }
    c
}
