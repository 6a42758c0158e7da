//! `[database.tune]`: the settings of `tune_patterns`, seed 000's pattern
//! library upkeep. Every threshold defaults to the seed's value and every
//! step has its own switch; the action changes rows, so it is off until
//! `enabled = true`.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;
use super::range::ranged;
use super::responder::Problem;

/// The four steps, each on the state the previous one left.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneConfig {
    pub enabled: bool,
    /// Step 1: confidence + `promote_step` (up to `promote_ceiling`) when
    /// usage is over `promote_min_usage`.
    pub promote: bool,
    pub promote_min_usage: i64,
    pub promote_step: f64,
    pub promote_ceiling: f64,
    /// Step 2: confidence - `demote_step` (down to `demote_floor`) when last
    /// used over `demote_unused_after` ago with usage under `demote_max_usage`.
    pub demote: bool,
    pub demote_unused_after: Duration,
    pub demote_max_usage: i64,
    pub demote_step: f64,
    pub demote_floor: f64,
    /// Step 3: `last_used` to NULL when last used over `clear_unused_after`
    /// ago with usage under `clear_max_usage` (the seed's "stale cache").
    pub clear_cache: bool,
    pub clear_unused_after: Duration,
    pub clear_max_usage: i64,
    /// Step 4: rows sharing type and pattern_data become one.
    pub consolidate: bool,
}

impl Default for TuneConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            promote: true,
            promote_min_usage: 100,
            promote_step: 0.05,
            promote_ceiling: 0.95,
            demote: true,
            demote_unused_after: Duration::from_secs(60 * 86400),
            demote_max_usage: 5,
            demote_step: 0.1,
            demote_floor: 0.3,
            clear_cache: true,
            clear_unused_after: Duration::from_secs(30 * 86400),
            clear_max_usage: 5,
            consolidate: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTune {
    #[serde(default)]
    enabled: bool,
    promote: Option<bool>,
    promote_min_usage: Option<Spanned<i64>>,
    promote_step: Option<Spanned<f64>>,
    promote_ceiling: Option<Spanned<f64>>,
    demote: Option<bool>,
    demote_unused_after: Option<HumanDuration>,
    demote_max_usage: Option<Spanned<i64>>,
    demote_step: Option<Spanned<f64>>,
    demote_floor: Option<Spanned<f64>>,
    clear_cache: Option<bool>,
    clear_unused_after: Option<HumanDuration>,
    clear_max_usage: Option<Spanned<i64>>,
    consolidate: Option<bool>,
}

pub(super) fn resolve_tune(raw: &FileTune, problems: &mut Vec<Problem>) -> TuneConfig {
    let def = TuneConfig::default();
    let count = |v: &Option<Spanned<i64>>, key: &str, default: i64, p: &mut Vec<Problem>| {
        ranged(v, key, 0..=i64::from(i32::MAX), default, p)
    };
    let unit = |v: &Option<Spanned<f64>>, key: &str, default: f64, p: &mut Vec<Problem>| {
        ranged(v, key, 0.0..=1.0, default, p)
    };
    let d = |v: &Option<HumanDuration>, default: Duration| v.as_ref().map_or(default, |h| h.0);
    TuneConfig {
        enabled: raw.enabled,
        promote: raw.promote.unwrap_or(def.promote),
        promote_min_usage: count(
            &raw.promote_min_usage,
            "tune.promote_min_usage",
            def.promote_min_usage,
            problems,
        ),
        promote_step: unit(
            &raw.promote_step,
            "tune.promote_step",
            def.promote_step,
            problems,
        ),
        promote_ceiling: unit(
            &raw.promote_ceiling,
            "tune.promote_ceiling",
            def.promote_ceiling,
            problems,
        ),
        demote: raw.demote.unwrap_or(def.demote),
        demote_unused_after: d(&raw.demote_unused_after, def.demote_unused_after),
        demote_max_usage: count(
            &raw.demote_max_usage,
            "tune.demote_max_usage",
            def.demote_max_usage,
            problems,
        ),
        demote_step: unit(
            &raw.demote_step,
            "tune.demote_step",
            def.demote_step,
            problems,
        ),
        demote_floor: unit(
            &raw.demote_floor,
            "tune.demote_floor",
            def.demote_floor,
            problems,
        ),
        clear_cache: raw.clear_cache.unwrap_or(def.clear_cache),
        clear_unused_after: d(&raw.clear_unused_after, def.clear_unused_after),
        clear_max_usage: count(
            &raw.clear_max_usage,
            "tune.clear_max_usage",
            def.clear_max_usage,
            problems,
        ),
        consolidate: raw.consolidate.unwrap_or(def.consolidate),
    }
}
