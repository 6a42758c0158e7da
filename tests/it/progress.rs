//! Progress of long commands: a bar with bytes, rate and time left on a
//! terminal (a pseudo-terminal made by `script -qec CMD /dev/null`), plain
//! log lines without escape codes otherwise. The demo database is large
//! enough (about 20 MB, a few MB compressed) that each byte stage spans
//! several redraws of the bar.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::caretaker;

const BIN: &str = env!("CARGO_BIN_EXE_caretaker");

/// A demo folder with a database of 10,000 patterns of 2 KB and one backup.
fn demo(dir: &Path) -> PathBuf {
    let out = caretaker()
        .args([
            "demo",
            "--no-serve",
            "--patterns=10000",
            "--pattern-bytes=2000",
        ])
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

/// Runs `caretaker ARGS` on a pseudo-terminal 120 columns wide; its
/// output, as the terminal got it.
fn on_terminal(args: &[String]) -> String {
    let line = std::iter::once(format!("stty cols 120 rows 40; {BIN}"))
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("run script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{line}: {text}");
    text
}

/// Runs `caretaker ARGS` with standard error a pipe; stdout and stderr.
fn piped(args: &[String]) -> (String, String) {
    let out = caretaker().args(args).output().expect("run");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
    (stdout, stderr)
}

/// The bar's redraws of a byte stage named `stage`, in order: what follows
/// the bar (`1.88 MiB/6.00 MiB 16.15 MiB/s, 0s left  decompressing ...`).
fn redraws(text: &str, stage: &str) -> Vec<String> {
    text.split(['\r', '\n'])
        .filter(|l| l.contains(stage) && l.contains("/s, ") && l.contains(" left"))
        .map(|l| {
            let plain = l.rsplit('\x1b').next().unwrap_or(l);
            let plain = plain.split_once(']').map_or(plain, |(_, rest)| rest);
            plain.trim().to_string()
        })
        .collect()
}

#[test]
fn long_commands_draw_a_bar_on_a_terminal_and_log_lines_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = demo(dir.path());
    let flag = format!("--config.file={}", config.display());
    let args = |words: &[&str]| -> Vec<String> {
        words
            .iter()
            .map(|w| w.to_string())
            .chain([flag.clone()])
            .collect()
    };

    // backups verify: decompression with bytes, rate and time left, redrawn
    // as it goes, then the check with a spinner.
    let shown = on_terminal(&args(&["backups", "verify"]));
    assert!(
        shown.contains('\x1b'),
        "a bar is drawn with escape codes: {shown:?}"
    );
    let drawn = redraws(&shown, "decompressing");
    let distinct: std::collections::BTreeSet<&str> = drawn
        .iter()
        .filter_map(|d| d.split_whitespace().next())
        .collect();
    assert!(
        distinct.len() >= 3,
        "the bar moved through several positions: {drawn:?}"
    );
    let last = drawn.last().expect("a byte bar");
    assert!(
        last.contains(" MiB/") && last.contains(" MiB/s, "),
        "bytes done and total: {last}"
    );
    assert!(
        shown.contains("checking memory-"),
        "the check stage: {shown:?}"
    );
    assert!(
        shown.contains("ok "),
        "the result line still prints: {shown:?}"
    );

    // run backup: the copy of the database, by bytes.
    let shown = on_terminal(&args(&["run", "backup"]));
    assert!(!redraws(&shown, "copying memory").is_empty(), "{shown:?}");
    assert!(shown.contains("checking the copy"), "{shown:?}");

    // restore: decompression and the full check of what is put in place.
    let shown = on_terminal(&args(&["restore", "--force"]));
    assert!(!redraws(&shown, "decompressing").is_empty(), "{shown:?}");
    assert!(shown.contains("restored memory from"), "{shown:?}");

    // Not a terminal: log lines, no escape code anywhere.
    for command in [
        &["backups", "verify"][..],
        &["run", "verify_backups"],
        &["run", "vacuum", "--ignore-window"],
    ] {
        let (stdout, stderr) = piped(&args(command));
        assert!(
            !stdout.contains('\x1b') && !stderr.contains('\x1b'),
            "{command:?}: {stderr:?}"
        );
        assert!(
            stderr.contains("message=started stage="),
            "{command:?}: {stderr}"
        );
        assert!(
            stderr.contains("message=done stage="),
            "{command:?}: {stderr}"
        );
    }
    let (_, stderr) = piped(&args(&["backups", "verify"]));
    let done = stderr
        .lines()
        .find(|l| l.contains("message=done stage=\"decompressing"))
        .expect("a done line for the decompression");
    assert!(
        done.contains("done_bytes=") && done.contains("bytes_per_second="),
        "{done}"
    );
}

/// Downloads from the offsite store (a `file://` folder here) show their
/// bytes too, for `backups verify --from=offsite` and `restore --from=offsite`.
#[test]
fn offsite_downloads_draw_a_bar_on_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    demo(dir.path());
    let remote = dir.path().join("remote");
    std::fs::create_dir(&remote).expect("remote folder");
    let config = dir.path().join("offsite.toml");
    std::fs::write(
        &config,
        format!(
            "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n[database.backup]\ndir = \"backups\"\n\
             [database.backup.offsite]\nurl = \"file://{}\"\nencrypt = false\n",
            remote.display()
        ),
    )
    .expect("write config");
    let flag = format!("--config.file={}", config.display());
    let args = |words: &[&str]| -> Vec<String> {
        words
            .iter()
            .map(|w| w.to_string())
            .chain([flag.clone()])
            .collect()
    };
    // The backup uploads itself; piped, so no bar.
    let (_, stderr) = piped(&args(&["run", "backup"]));
    assert!(!stderr.contains('\x1b'), "{stderr:?}");

    let shown = on_terminal(&args(&["backups", "verify", "--from=offsite"]));
    assert!(
        !redraws(&shown, "downloading memory-").is_empty(),
        "{shown:?}"
    );
    assert!(!redraws(&shown, "decompressing").is_empty(), "{shown:?}");
    assert!(shown.contains("ok "), "{shown:?}");

    let shown = on_terminal(&args(&["restore", "--from=offsite", "--force"]));
    assert!(
        !redraws(&shown, "downloading memory-").is_empty(),
        "{shown:?}"
    );
    assert!(shown.contains("restored memory from"), "{shown:?}");
}
