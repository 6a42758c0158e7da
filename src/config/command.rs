//! `[[command]]`: programs the `command:<name>` action runs without a shell,
//! with the environment, folder and time each may have.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::duration::HumanDuration;
use super::responder::Problem;

/// A command run by the `command:<name>` action, without a shell.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandConfig {
    pub name: String,
    pub argv: Vec<String>,
    pub timeout: Duration,
    /// Alert labels passed as `CARETAKER_LABEL_<NAME>` environment variables.
    pub env_labels: Vec<String>,
    /// Fixed environment variables; besides these the program sees only
    /// `PATH`, `LANG`, `CARETAKER_DATABASE*` and the allowed labels.
    pub env: BTreeMap<String, String>,
    /// The working folder: `dir`, or the configuration file's folder.
    pub dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCommand {
    name: Spanned<String>,
    argv: Spanned<Vec<String>>,
    timeout: Option<HumanDuration>,
    #[serde(default)]
    env_labels: Vec<String>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    dir: Option<String>,
}

/// Whether `name` can be an environment variable set by `[[command]] env`:
/// a plain identifier, and not one of the `CARETAKER_` names caretaker sets.
fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.to_ascii_uppercase().starts_with("CARETAKER_")
}

pub(super) fn resolve_commands(
    raw: &[FileCommand],
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<CommandConfig> {
    let mut out: Vec<CommandConfig> = Vec::new();
    for c in raw {
        let at = Some(c.name.span().start);
        if out.iter().any(|o| &o.name == c.name.get_ref()) {
            problems.push((
                at,
                format!("command name {:?} is used twice", c.name.get_ref()),
            ));
        }
        if c.argv.get_ref().is_empty() || c.argv.get_ref()[0].is_empty() {
            problems.push((
                Some(c.argv.span().start),
                "command argv must name a program".into(),
            ));
        }
        let env = c
            .env
            .as_ref()
            .map(|e| e.get_ref().clone())
            .unwrap_or_default();
        let env_at = c.env.as_ref().map(|e| e.span().start);
        for (name, value) in &env {
            if !valid_env_name(name) || value.contains('\0') {
                problems.push((
                    env_at,
                    format!("command env {name:?} must be a plain name (letters, digits, '_'; not CARETAKER_*) with a value without NUL bytes"),
                ));
            }
        }
        out.push(CommandConfig {
            name: c.name.get_ref().clone(),
            argv: c.argv.get_ref().clone(),
            timeout: c.timeout.map_or(Duration::from_secs(60), |h| h.0),
            env_labels: c.env_labels.clone(),
            env,
            dir: c
                .dir
                .as_deref()
                .map_or_else(|| base.to_path_buf(), |d| base.join(d)),
        });
    }
    out
}
