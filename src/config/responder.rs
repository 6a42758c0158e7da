//! The responder's part of the configuration: safety limits, rules that map
//! alerts to actions, and caretaker's own state database (`[[command]]`s
//! are in [`super::command`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::command::CommandConfig;
use super::duration::HumanDuration;
use super::range::ranged;
use crate::actions::kind::ActionKind;
use crate::responder::matcher::Matcher;

/// Where the state database goes unless `responder.state_file` says otherwise,
/// relative to the configuration file: in a folder of its own, because the
/// configuration's folder is watched for edits and every commit of the state
/// database there would wake the watcher.
pub const DEFAULT_STATE_FILE: &str = "state/caretaker-state.db";

/// The environment variable that names a writable data folder for the state
/// database when `responder.state_file` is not set. A configuration folder is
/// often read-only (a mounted `/etc/caretaker` in the image, which sets
/// `/var/lib/caretaker` here), and every subcommand (`serve`, `run`,
/// `history`) must find the same state database, so this is read where the
/// configuration is resolved rather than passed as one command's flag.
pub const STATE_DIR_ENV: &str = "CARETAKER_STATE_DIR";

/// The state database's path: `state_file` against the configuration's folder,
/// else `caretaker-state.db` in `state_dir` (from [`STATE_DIR_ENV`]), else
/// [`DEFAULT_STATE_FILE`] against the configuration's folder.
pub fn state_path(state_file: Option<&str>, state_dir: Option<&Path>, base: &Path) -> PathBuf {
    match (state_file, state_dir) {
        (Some(file), _) => base.join(file),
        (None, Some(dir)) => dir.join("caretaker-state.db"),
        (None, None) => base.join(DEFAULT_STATE_FILE),
    }
}

/// Limits and switches of the responder.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponderConfig {
    /// Run every action in dry-run mode: report, change nothing.
    pub dry_run: bool,
    pub max_concurrent: usize,
    pub queue_size: usize,
    /// At most this many runs of one action on one database per `breaker_window`.
    pub breaker_max_runs: u32,
    pub breaker_window: Duration,
    /// The breaker opens after this many consecutive failures.
    pub breaker_failures: u32,
    pub action_timeout: Duration,
    pub body_limit: usize,
    pub request_timeout: Duration,
    /// caretaker's own SQLite file (jobs, audit): never an application database.
    pub state_path: PathBuf,
    /// Optional Slack-compatible webhook for outcomes.
    pub notify_url: Option<String>,
    /// Jobs and audit events older than this are deleted (at startup and hourly).
    pub history_retention: Duration,
    /// The `instance` label values that name this caretaker (`responder.instance`);
    /// empty means the defaults of [`crate::responder::plan::identities`].
    pub instance: Vec<String>,
}

/// Maps alerts to actions.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub actions: Vec<String>,
    /// A fixed database; otherwise the alert's `database` label.
    pub database: Option<String>,
    pub cooldown: Duration,
    /// Run again for a repeat of an episode already remediated.
    pub retry: bool,
    pub dry_run: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileResponder {
    #[serde(default)]
    dry_run: bool,
    max_concurrent: Option<Spanned<usize>>,
    queue_size: Option<Spanned<usize>>,
    breaker_max_runs: Option<Spanned<u32>>,
    breaker_window: Option<HumanDuration>,
    breaker_failures: Option<Spanned<u32>>,
    action_timeout: Option<HumanDuration>,
    body_limit: Option<usize>,
    request_timeout: Option<HumanDuration>,
    state_file: Option<String>,
    notify_url: Option<String>,
    history_retention: Option<Spanned<HumanDuration>>,
    instance: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRule {
    name: Spanned<String>,
    #[serde(default)]
    matchers: Vec<Spanned<String>>,
    actions: Spanned<Vec<String>>,
    database: Option<Spanned<String>>,
    cooldown: Option<HumanDuration>,
    #[serde(default)]
    retry: bool,
    #[serde(default)]
    dry_run: bool,
}

/// A problem at a byte offset of the file.
pub(super) type Problem = (Option<usize>, String);

pub(super) fn resolve_responder(
    raw: &FileResponder,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> ResponderConfig {
    let d = |v: Option<HumanDuration>, secs: u64| v.map_or(Duration::from_secs(secs), |h| h.0);
    let key = |name: &str| format!("responder.{name}");
    ResponderConfig {
        dry_run: raw.dry_run,
        max_concurrent: ranged(
            &raw.max_concurrent,
            &key("max_concurrent"),
            1..=64,
            2,
            problems,
        ),
        queue_size: ranged(
            &raw.queue_size,
            &key("queue_size"),
            1..=1_000_000,
            1000,
            problems,
        ),
        breaker_max_runs: ranged(
            &raw.breaker_max_runs,
            &key("breaker_max_runs"),
            1..=1_000_000,
            6,
            problems,
        ),
        breaker_window: d(raw.breaker_window, 3600),
        breaker_failures: ranged(
            &raw.breaker_failures,
            &key("breaker_failures"),
            1..=1000,
            3,
            problems,
        ),
        action_timeout: d(raw.action_timeout, 3600),
        body_limit: raw.body_limit.unwrap_or(1 << 20),
        request_timeout: d(raw.request_timeout, 10),
        state_path: state_path(
            raw.state_file.as_deref(),
            std::env::var_os(STATE_DIR_ENV)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .as_deref(),
            base,
        ),
        notify_url: raw.notify_url.clone(),
        history_retention: history_retention(raw, problems),
        instance: instance(raw, problems),
    }
}

/// `responder.instance`: a list of non-empty names; an empty list would make
/// every alert that carries an `instance` label someone else's.
fn instance(raw: &FileResponder, problems: &mut Vec<Problem>) -> Vec<String> {
    let Some(list) = &raw.instance else {
        return Vec::new();
    };
    let at = Some(list.span().start);
    if list.get_ref().is_empty() {
        problems.push((at, "responder.instance must name at least one instance (host:port as Prometheus scrapes it), or be left out for the defaults".into()));
    }
    if list.get_ref().iter().any(|i| i.trim().is_empty()) {
        problems.push((at, "responder.instance entries must not be empty".into()));
    }
    list.get_ref().clone()
}

/// `responder.history_retention`: the breaker counts the runs of its window
/// in the history, so a shorter retention would let it forget runs. Written
/// shorter, it is refused; unset, it is 90 days or the window if longer.
fn history_retention(raw: &FileResponder, problems: &mut Vec<Problem>) -> Duration {
    let window = raw
        .breaker_window
        .map_or(Duration::from_secs(3600), |h| h.0);
    let Some(retention) = &raw.history_retention else {
        return Duration::from_secs(90 * 86400).max(window);
    };
    let kept = retention.get_ref().0;
    if kept < window {
        problems.push((
            Some(retention.span().start),
            format!(
                "responder.history_retention ({}) must be at least responder.breaker_window ({}): the breaker counts the runs of its window in the history",
                humantime::format_duration(kept),
                humantime::format_duration(window)
            ),
        ));
    }
    kept
}

pub(super) fn resolve_rules(
    raw: &[FileRule],
    databases: &[String],
    commands: &[CommandConfig],
    problems: &mut Vec<Problem>,
) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for r in raw {
        let at = Some(r.name.span().start);
        if out.iter().any(|o| &o.name == r.name.get_ref()) {
            problems.push((
                at,
                format!("rule name {:?} is used twice", r.name.get_ref()),
            ));
        }
        let mut matchers = Vec::new();
        for m in &r.matchers {
            match Matcher::parse(m.get_ref()) {
                Ok(parsed) => matchers.push(parsed),
                Err(e) => problems.push((Some(m.span().start), e)),
            }
        }
        if r.actions.get_ref().is_empty() {
            problems.push((
                Some(r.actions.span().start),
                "a rule needs at least one action".into(),
            ));
        }
        for action in r.actions.get_ref() {
            if !known_action(action, commands) {
                problems.push((
                    Some(r.actions.span().start),
                    format!(
                        "unknown action {action:?} (known: {}, or command:<name> of a [[command]])",
                        ActionKind::known_list()
                    ),
                ));
            }
        }
        if let Some(db) = &r.database {
            if !databases.contains(db.get_ref()) {
                problems.push((
                    Some(db.span().start),
                    format!("rule database {:?} is not configured", db.get_ref()),
                ));
            }
        }
        out.push(Rule {
            name: r.name.get_ref().clone(),
            matchers,
            actions: r.actions.get_ref().clone(),
            database: r.database.as_ref().map(|d| d.get_ref().clone()),
            cooldown: r.cooldown.map_or(Duration::from_secs(600), |h| h.0),
            retry: r.retry,
            dry_run: r.dry_run,
        });
    }
    out
}

/// Whether `action` names a built-in action or a configured `command:<name>`.
pub fn known_action(action: &str, commands: &[CommandConfig]) -> bool {
    match action.parse::<ActionKind>() {
        Ok(ActionKind::Command(name)) => commands.iter().any(|c| c.name == name),
        // A report runs from the schedule that names it, never from a rule.
        Ok(ActionKind::Report(_)) => false,
        Ok(_) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
#[path = "responder_tests.rs"]
mod tests;
