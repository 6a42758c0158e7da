//! `command:<name>`: a program from configuration, run without a shell.
//!
//! The argv comes only from the `[[command]]` entry. Alert labels reach the
//! program only as environment variables, and only those the entry allows;
//! they never become arguments, paths or shell text.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Action, ActionContext, ActionError, Outcome};
use crate::config::CommandConfig;

/// How much of the output is kept for the audit.
const TAIL: usize = 2048;

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

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(TAIL);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

impl Action for RunCommand {
    fn name(&self) -> &'static str {
        "command"
    }

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
        let mut child = Command::new(program)
            .args(args)
            .envs(label_env(&self.spec, &self.labels))
            .env("CARETAKER_DATABASE", &ctx.database.name)
            .env("CARETAKER_DATABASE_PATH", &ctx.database.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let reader = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = reader(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let err = reader(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let deadline = ctx.deadline.min(started + self.spec.timeout);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        let seconds = started.elapsed().as_secs_f64();
        let output = format!("{}{}", tail(&stdout), tail(&stderr));
        match status {
            None => Err(ActionError::Deadline(format!(
                "{program} killed after {seconds:.1} s; output: {output}"
            ))),
            Some(s) if s.success() => Ok(Outcome::new(format!(
                "{program} exited 0; output: {output}"
            ))
            .figure("exit_code", 0.0)
            .figure("seconds", seconds)),
            Some(s) => Err(ActionError::Failed(format!(
                "{program} exited with {s}; output: {output}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_labels_reach_the_environment() {
        let spec = CommandConfig {
            name: "x".into(),
            argv: vec!["true".into()],
            timeout: Duration::from_secs(1),
            env_labels: vec!["alertname".into(), "bad-name".into(), "nul".into()],
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
