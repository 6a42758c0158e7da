//! Per-database settings of the heavier maintenance actions: VACUUM's switch
//! and window, and the folders `cleanup_files` may tidy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;
use super::responder::Problem;

/// VACUUM rewrites the whole file: off until enabled, optionally windowed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VacuumConfig {
    pub enabled: bool,
    pub window: Option<Window>,
}

/// A daily maintenance window in UTC, as minutes after midnight; it may wrap
/// past midnight (`22:00-02:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u32,
    pub end: u32,
}

impl Window {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(text: &str) -> Result<Window, String> {
        let minutes = |s: &str| -> Option<u32> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| format!("window {text:?} is not HH:MM-HH:MM"))?;
        match (minutes(a), minutes(b)) {
            (Some(start), Some(end)) if start != end => Ok(Window { start, end }),
            _ => Err(format!(
                "window {text:?} is not HH:MM-HH:MM with distinct ends"
            )),
        }
    }

    /// Whether `minute` (after UTC midnight) is inside the window.
    pub fn contains(&self, minute: u32) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

/// A folder whose old files `cleanup_files` removes.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanupConfig {
    pub dir: PathBuf,
    pub pattern: String,
    pub older_than: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileVacuum {
    #[serde(default)]
    enabled: bool,
    window: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCleanup {
    dir: String,
    pattern: Spanned<String>,
    older_than: HumanDuration,
}

pub(super) fn resolve_vacuum(raw: &FileVacuum, problems: &mut Vec<Problem>) -> VacuumConfig {
    let window = raw
        .window
        .as_ref()
        .and_then(|w| match Window::parse(w.get_ref()) {
            Ok(w) => Some(w),
            Err(e) => {
                problems.push((Some(w.span().start), e));
                None
            }
        });
    VacuumConfig {
        enabled: raw.enabled,
        window,
    }
}

pub(super) fn resolve_cleanup(
    raw: &[FileCleanup],
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<CleanupConfig> {
    raw.iter()
        .map(|c| {
            if let Err(e) = glob::Pattern::new(c.pattern.get_ref()) {
                problems.push((
                    Some(c.pattern.span().start),
                    format!("invalid pattern: {e}"),
                ));
            }
            if c.pattern.get_ref().contains('/') {
                problems.push((
                    Some(c.pattern.span().start),
                    "pattern matches file names; it cannot contain '/'".into(),
                ));
            }
            CleanupConfig {
                dir: base.join(&c.dir),
                pattern: c.pattern.get_ref().clone(),
                older_than: c.older_than.0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_wrap_past_midnight() {
        let w = Window::parse("02:00-04:00").expect("parse");
        assert!(w.contains(120) && w.contains(239) && !w.contains(240) && !w.contains(119));
        let night = Window::parse("22:30-01:00").expect("parse");
        assert!(
            night.contains(23 * 60)
                && night.contains(30)
                && !night.contains(60)
                && !night.contains(12 * 60)
        );
        for bad in ["2-4", "02:00", "25:00-01:00", "01:00-01:00"] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }
}
