//! The documents people paste from: every `caretaker ...` line of
//! docs/runbooks.md runs as written against a demo folder, README's Usage names
//! every subcommand and flag of the binary, and every alert the runbooks say
//! caretaker answers by itself has a rule in the shipped example
//! configurations. Each test reads the documents at test time, so they cannot
//! drift from the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_caretaker");

pub fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("caretaker runs");
    assert!(out.status.success(), "caretaker {args:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The subcommands `caretaker --help` lists, without `help`.
fn subcommands() -> Vec<String> {
    let text = help(&["--help"]);
    let list = text
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section")
        .split("\n\n")
        .next()
        .unwrap_or_default();
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .map(String::from)
        .collect()
}

/// The long flags of one subcommand, without the global and help flags.
fn flags(subcommand: &str) -> Vec<String> {
    help(&[subcommand, "--help"])
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .filter_map(|l| {
            l.split([' ', ','])
                .find(|w| w.starts_with("--"))
                .map(String::from)
        })
        .filter(|f| !matches!(f.as_str(), "--help" | "--log.level" | "--log.format"))
        .collect()
}

/// The text of a `## Title` section of a Markdown document.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("section {title}"));
    let rest = &text[start + 1..];
    rest[3..].find("\n## ").map_or(rest, |end| &rest[..end + 3])
}

#[test]
fn readme_usage_names_every_subcommand_and_its_flags() {
    let readme = repo_file("README.md");
    let usage = section(&readme, "Usage");
    let subs = subcommands();
    assert!(subs.len() >= 8, "subcommands from --help: {subs:?}");
    for sub in &subs {
        let prefix = format!("caretaker {sub} ");
        let lines: Vec<&str> = usage
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with(&prefix))
            .collect();
        assert!(
            !lines.is_empty(),
            "README's Usage has no `{prefix}...` line"
        );
        let lines = lines.join(" ");
        for flag in flags(sub) {
            assert!(
                lines.contains(&flag),
                "README's Usage line for {sub} lacks {flag}: {lines}"
            );
        }
    }
}

/// Every `caretaker ...` command of a Markdown text: lines of fenced blocks
/// (with `\` continuations) and inline code spans (which may wrap).
pub fn caretaker_commands(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut prose = String::new();
    let mut fenced = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            prose.push_str(line);
            prose.push('\n');
            continue;
        }
        let line = line.trim();
        let (part, continues) = match line.strip_suffix('\\') {
            Some(p) => (p, true),
            None => (line, false),
        };
        pending.push_str(part);
        pending.push(' ');
        if !continues {
            let cmd = pending.trim().to_string();
            if is_command(&cmd) {
                commands.push(cmd);
            }
            pending.clear();
        }
    }
    for span in prose.split('`').skip(1).step_by(2) {
        let cmd = span.split_whitespace().collect::<Vec<_>>().join(" ");
        if is_command(&cmd) {
            commands.push(cmd);
        }
    }
    commands
}

/// `caretaker` and a word that could be a subcommand (not a dashboard title
/// such as "caretaker / Remediation").
fn is_command(text: &str) -> bool {
    text.strip_prefix("caretaker ")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_lowercase()))
}

/// Splits a command line as `sh` would, for the quoting the runbooks use:
/// single quotes, double quotes, `$NAME` and `"$NAME"` expansion.
fn shell_words(line: &str, var: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let (mut single, mut double) = (false, false);
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => {
                single = !single;
                in_word = true;
            }
            '"' if !single => {
                double = !double;
                in_word = true;
            }
            '$' if !single => {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                word.push_str(&var(&name));
                in_word = true;
            }
            c if c.is_whitespace() && !single && !double => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The newest backup file of a folder (not a sidecar or a manifest).
fn newest_backup(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("backup folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| crate::common::is_backup_data(n) && !n.starts_with('.'))
        .collect();
    names.sort();
    names.pop().expect("a backup")
}

/// Runs a command with a deadline; returns (success, combined output).
fn run_with_deadline(args: &[String], deadline: Duration) -> (bool, String) {
    let out_path = tempfile::NamedTempFile::new().expect("temp");
    let file = out_path.reopen().expect("reopen");
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone"))
        .stderr(file)
        .spawn()
        .expect("spawn caretaker");
    let end = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(out_path.path()).unwrap_or_default();
    (status.is_some_and(|s| s.success()), text)
}

pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Makes `caretaker demo --no-serve` in `dir` and returns its configuration.
pub fn demo(dir: &Path) -> PathBuf {
    let out = Command::new(BIN)
        .args(["demo", "--no-serve", "--patterns=300"])
        .arg(format!("--dir={}", dir.display()))
        .output()
        .expect("demo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("caretaker.toml")
}

#[test]
fn every_caretaker_command_of_the_runbooks_runs_as_written() {
    let runbooks = repo_file("docs/runbooks.md");
    let mut commands = caretaker_commands(&runbooks);
    // A command written twice runs once (a second restore would find the
    // first one's `.before-restore` and rightly refuse).
    let mut seen = std::collections::HashSet::new();
    commands.retain(|c| seen.insert(c.clone()));
    assert!(commands.len() >= 12, "too few commands found: {commands:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = demo(dir.path());
    let backups = dir.path().join("backups");
    // The migration the runbooks' `caretaker migrate` lines name.
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).expect("migrations folder");
    for (file, sql) in [
        (
            "20251015120000_add_pattern_type_index.sql",
            "CREATE INDEX idx_patterns_type_confidence ON patterns(type, confidence DESC);",
        ),
        (
            "20251015120000_add_pattern_type_index.down.sql",
            "DROP INDEX idx_patterns_type_confidence;",
        ),
    ] {
        std::fs::write(migrations.join(file), sql).expect("migration");
    }
    let mut ran = 0;
    let mut last_backup = unix_seconds();
    for line in &commands {
        let var = |name: &str| match name {
            "CONFIG" => config.display().to_string(),
            "NAME" => "memory".into(),
            "DB" => dir.path().join("memory.db").display().to_string(),
            "BACKUPS" => backups.display().to_string(),
            "MIGRATIONS" => migrations.display().to_string(),
            other => panic!("{line}: unknown variable ${other}"),
        };
        let mut words = shell_words(line, &var);
        assert_eq!(words.first().map(String::as_str), Some("caretaker"));
        words.remove(0);
        // The runbooks' placeholders: an action, a backup file, "the rest as above".
        let newest = newest_backup(&backups);
        for w in &mut words {
            *w = w
                .replace("ACTION", "integrity_check")
                .replace("/FILE", &format!("/{newest}"));
        }
        if words.last().map(String::as_str) == Some("...") {
            words.pop();
            words.push(format!("--config.file={}", var("CONFIG")));
            words.push("--database=memory".into());
        }
        if words.first().map(String::as_str) == Some("restore") {
            // As the runbooks say: a `.before-restore` left by an earlier
            // restore is moved away first.
            let aside = dir.path().join("memory.db.before-restore");
            if aside.exists() {
                for s in ["", "-wal", "-shm"] {
                    let from = PathBuf::from(format!("{}{s}", aside.display()));
                    if from.exists() {
                        let to = format!("{}.{ran}{s}", aside.display());
                        std::fs::rename(&from, to).expect("move aside");
                    }
                }
            }
        }
        if words.len() == 1 {
            // A name in prose ("`caretaker run` also records..."): the
            // subcommand must exist.
            words.push("--help".into());
        }
        let is_backup = words.iter().any(|w| w == "backup");
        if is_backup {
            // Backup names carry the second they were taken, and a second
            // backup within the same second is refused ("already exists"):
            // let the clock move past the last one first.
            while unix_seconds() <= last_backup {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let (ok, output) = run_with_deadline(&words, Duration::from_secs(120));
        if is_backup {
            last_backup = unix_seconds();
        }
        assert!(ok, "`{line}` (run as {words:?}) failed:\n{output}");
        ran += 1;
    }
    assert_eq!(ran, commands.len());
}
