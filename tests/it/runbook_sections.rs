//! Whole manual procedures of docs/runbooks.md, run as a person pastes them:
//! each test takes the fenced shell blocks of one alert's section and runs
//! them with `sh` against a demo folder, then checks what caretaker sees.
//! They use Debian's `sqlite3` (scripts/test.sh installs it).

use std::path::Path;
use std::process::Command;

use rusqlite::Connection;

use crate::runbook_steps::{demo, repo_file, unix_seconds, BIN};

/// The fenced blocks of the runbook section `### heading`, dedented.
fn section_blocks(heading: &str) -> Vec<String> {
    let text = repo_file("docs/runbooks.md");
    let start = text
        .find(&format!("\n### {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let body = &text[start + 5 + heading.len()..];
    let body = body.find("\n##").map_or(body, |end| &body[..end]);
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in body.lines() {
        let line = line.trim_start();
        if line.starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some(String::new()),
            }
        } else if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
}

/// Runs `script` with `sh` and the runbooks' names set for the demo in `dir`;
/// `caretaker` on PATH is the binary under test. Returns the output.
fn run_sh(dir: &Path, script: &str) -> String {
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .env("CONFIG", dir.join("caretaker.toml"))
        .env("NAME", "memory")
        .env("DB", dir.join("memory.db"))
        .env("BACKUPS", dir.join("backups"))
        .output()
        .expect("sh runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn caretaker(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg(format!(
            "--config.file={}",
            dir.join("caretaker.toml").display()
        ))
        .output()
        .expect("caretaker runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_backup_made_by_hand_as_the_runbook_says_is_listed_and_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    demo(dir.path());
    // Backup names carry their second; one more in the demo's second is
    // refused ("already exists"), so start in the next one.
    let taken = unix_seconds();
    while unix_seconds() <= taken {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let blocks = section_blocks("CaretakerBackupTooOld");
    assert!(!blocks.is_empty(), "the section has shell steps");
    for block in &blocks {
        let out = run_sh(dir.path(), block);
        println!("{block}---\n{out}");
    }
    // Every file in the folder is a sidecar, a manifest or a backup caretaker
    // lists as verified: nothing unverified, no `-wal`/`-shm` left behind.
    let (ok, listed) = caretaker(&["backups", "list"], dir.path());
    assert!(ok, "{listed}");
    let mut backups = 0;
    for entry in std::fs::read_dir(dir.path().join("backups")).expect("folder") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        let kept = [".sha256", ".manifest.json", ".restore-drills.json"];
        if kept.iter().any(|k| name.ends_with(k)) {
            continue;
        }
        let line = listed
            .lines()
            .find(|l| l.ends_with(&format!("/{name}")))
            .unwrap_or_else(|| panic!("{name} is not listed by caretaker:\n{listed}"));
        assert!(line.contains("checksum ok"), "{line}");
        backups += 1;
    }
    assert!(
        backups >= 2,
        "the demo's backup and the one made by hand:\n{listed}"
    );
    let (ok, verified) = caretaker(&["backups", "verify"], dir.path());
    assert!(ok, "every backup verifies:\n{verified}");
}

/// Row counts of every table, or None for a table that cannot be counted.
fn counts(db: &Path) -> Vec<(String, Option<i64>)> {
    let conn =
        Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1")
        .expect("schema");
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("names")
        .collect::<Result<_, _>>()
        .expect("names");
    names
        .into_iter()
        .map(|t| {
            let n = conn
                .query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))
                .ok();
            (t, n)
        })
        .collect()
}

/// Overwrites pages in the middle of the file with bytes that are no b-tree.
fn damage(db: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let pages: i64 = {
        let conn = Connection::open(db).expect("open");
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .expect("checkpoint");
        conn.query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("pages")
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(db)
        .expect("open file");
    f.seek(SeekFrom::Start((pages as u64) / 2 * 4096))
        .expect("seek");
    let mut x: u32 = 0x9e37_79b9;
    let garbage: Vec<u8> = (0..20 * 4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    f.write_all(&garbage).expect("write");
    f.sync_all().expect("sync");
}

#[test]
fn the_documented_salvage_keeps_rows_and_its_counts_say_how_many() {
    let dir = tempfile::tempdir().expect("tempdir");
    demo(dir.path());
    let db = dir.path().join("memory.db");
    let before = counts(&db);
    damage(&db);
    let check: String = Connection::open(&db)
        .expect("open")
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check runs");
    assert_ne!(check, "ok", "the damage shows");
    // The section's steps that need no backup: counting, salvage, swap-in.
    let blocks: Vec<String> = section_blocks("CaretakerIntegrityCheckFailed")
        .into_iter()
        .filter(|b| !b.lines().any(|l| l.starts_with("caretaker ")))
        .collect();
    assert!(!blocks.is_empty(), "the section has salvage steps");
    let out = run_sh(dir.path(), &blocks.join("\n"));
    println!("{}\n---\n{out}", blocks.join("\n"));

    assert!(
        dir.path().join("memory.db.damaged").exists(),
        "the damaged file is kept aside"
    );
    let conn = Connection::open(&db).expect("open salvaged");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal", "WAL mode given back");
    drop(conn);
    let after = counts(&db);
    let names = |c: &[(String, Option<i64>)]| c.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after), names(&before), "every table salvaged");
    let mut kept = 0;
    for ((table, was), (_, now)) in before.iter().zip(&after) {
        let (was, now) = (was.expect("healthy count"), now.expect("salvaged count"));
        assert!(now <= was, "{table}: {now} rows from {was}");
        kept += now;
    }
    let total: i64 = before.iter().filter_map(|(_, n)| *n).sum();
    assert!(
        kept > total / 2,
        "most rows salvaged ({kept} of {total}), not an empty file:\n{out}"
    );
    // The counts the reader compares were written and name every table.
    let salvaged =
        std::fs::read_to_string(dir.path().join("memory.db.salvaged.counts")).unwrap_or_default();
    for (table, _) in &after {
        assert!(salvaged.contains(table.as_str()), "{table} in {salvaged}");
    }
    // caretaker's own check passes on the file put in place.
    let (ok, report) = caretaker(&["run", "integrity_check", "--database=memory"], dir.path());
    assert!(ok, "{report}");
}
