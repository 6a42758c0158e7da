//! `command:<name>`: a program from configuration, run without a shell.
//!
//! The argv comes only from the `[[command]]` entry. Alert labels reach the
//! program only as environment variables, and only those the entry allows;
//! they never become arguments, paths or shell text. The program starts with
//! an empty environment plus an allow-list (caretaker's own environment may
//! hold credentials, and the program's output goes to the audit, the API and
//! notifications), in a known folder, in a process group of its own that is
//! killed at its timeout, the action's deadline or shutdown (`child.rs`).

mod child;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use super::{Action, ActionContext, ActionError, Outcome};
use crate::config::CommandConfig;

/// Used when caretaker itself runs without a `PATH`.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

pub struct RunCommand {
    pub spec: CommandConfig,
    /// The alert's labels (only allow-listed ones are passed on).
    pub labels: BTreeMap<String, String>,
}

/// The environment variables for the allowed labels, skipping values that
/// cannot be passed (NUL bytes) and names that are not plain identifiers.
pub fn label_env(spec: &CommandConfig, labels: &BTreeMap<String, String>) -> Vec<(String, String)> {
    spec.env_labels
        .iter()
        .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|name| {
            let value = labels.get(name)?;
            (!value.contains('\0')).then(|| {
                (
                    format!("CARETAKER_LABEL_{}", name.to_ascii_uppercase()),
                    value.clone(),
                )
            })
        })
        .collect()
}

impl RunCommand {
    /// The program with exactly the environment and folder it may have.
    fn command(&self, program: &str, args: &[String], ctx: &ActionContext<'_>) -> Command {
        let mut command = Command::new(program);
        command.args(args).env_clear().current_dir(&self.spec.dir);
        command.env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        );
        if let Some(lang) = std::env::var_os("LANG") {
            command.env("LANG", lang);
        }
        command
            .envs(&self.spec.env)
            .envs(label_env(&self.spec, &self.labels))
            .env("CARETAKER_DATABASE", &ctx.database.name)
            .env("CARETAKER_DATABASE_PATH", &ctx.database.path);
        command
    }
}

impl Action for RunCommand {
    fn mutates(&self) -> bool {
        true
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, ActionError> {
        let (program, args) = self
            .spec
            .argv
            .split_first()
            .ok_or_else(|| ActionError::NotConfigured("command has an empty argv".into()))?;
        if ctx.dry_run {
            return Ok(Outcome::new(format!(
                "dry run: would run {:?}",
                self.spec.argv
            )));
        }
        let started = Instant::now();
        let deadline = started
            .checked_add(self.spec.timeout)
            .map_or(ctx.deadline, |own| own.min(ctx.deadline));
        let done = child::run(self.command(program, args, ctx), deadline, &ctx.stop)?;
        let seconds = started.elapsed().as_secs_f64();
        let output = format!("{}{}", done.stdout.text(), done.stderr.text());
        match done.ending {
            child::Ending::TimedOut => Err(ActionError::Deadline(format!(
                "{program} killed after {seconds:.1} s; output: {output}"
            ))),
            child::Ending::Stopped => Err(ActionError::Failed(format!(
                "{program} killed at shutdown after {seconds:.1} s; output: {output}"
            ))),
            child::Ending::Exited(s) if s.success() => Ok(Outcome::new(format!(
                "{program} exited 0; output: {output}"
            ))
            .figure("exit_code", 0.0)
            .figure("seconds", seconds)),
            child::Ending::Exited(s) => Err(ActionError::Failed(format!(
                "{program} exited with {s}; output: {output}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_allowed_labels_reach_the_environment() {
        let spec = CommandConfig {
            name: "x".into(),
            argv: vec!["true".into()],
            timeout: Duration::from_secs(1),
            env_labels: vec!["alertname".into(), "bad-name".into(), "nul".into()],
            env: BTreeMap::new(),
            dir: "/".into(),
        };
        let labels: BTreeMap<String, String> = [
            ("alertname", "$(rm -rf /); `x`"),
            ("bad-name", "v"),
            ("nul", "a\0b"),
            ("secret", "s"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            label_env(&spec, &labels),
            vec![(
                "CARETAKER_LABEL_ALERTNAME".to_string(),
                "$(rm -rf /); `x`".to_string()
            )]
        );
    }
}
