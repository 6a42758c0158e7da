//! The binary's subcommands as a user runs them.

use crate::common::{caretaker, check_config};

#[test]
fn check_config_prints_every_error_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[database]]\nname = \"x y\"\npath = \"a.db\"\n[web]\nlisten_address = \"nowhere\"\n",
    )
    .expect("write");
    let out = check_config(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{}:2:8: ", path.display()))),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{}:5:18: ", path.display()))),
        "{stderr}"
    );

    let missing = caretaker()
        .args(["check-config", "--config.file=/nonexistent/c.toml"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(1));
}
#[test]
fn demo_creates_a_database_a_token_and_a_valid_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    let out = caretaker()
        .arg("demo")
        .arg(format!("--dir={}", demo.display()))
        .args(["--no-serve", "--patterns=2000"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(demo.join("memory.db")).expect("open");
    let patterns: i64 = conn
        .query_row("SELECT COUNT(*) FROM patterns", [], |r| r.get(0))
        .expect("count");
    assert_eq!(patterns, 2000);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(demo.join("token"))
        .expect("token")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the token is private");
    let cfg = format!("--config.file={}", demo.join("caretaker.toml").display());
    let list = caretaker()
        .args(["backups", "list"])
        .arg(&cfg)
        .output()
        .expect("list");
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        listing.contains("checksum ok") && listing.contains("memory-"),
        "the demo starts with a verified backup: {listing}"
    );
    let verify = caretaker()
        .args(["backups", "verify"])
        .arg(&cfg)
        .output()
        .expect("verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // A change after the backup is undone by restore; the old file is kept aside.
    conn.execute("DELETE FROM patterns WHERE rowid % 2 = 0", [])
        .expect("delete");
    drop(conn);
    let out = caretaker()
        .arg("restore")
        .arg(&cfg)
        .output()
        .expect("restore");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(demo.join("memory.db")).expect("open");
    let restored: i64 = conn
        .query_row("SELECT COUNT(*) FROM patterns", [], |r| r.get(0))
        .expect("count");
    assert_eq!(restored, 2000);
    let kept = std::fs::read_dir(&demo)
        .expect("demo folder")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("memory.db.before-restore-"))
        })
        .expect("the previous database is kept in a folder of its own");
    assert!(kept.join("memory.db").exists());
    let check = caretaker()
        .arg("check-config")
        .arg(format!(
            "--config.file={}",
            demo.join("caretaker.toml").display()
        ))
        .output()
        .expect("run");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn run_and_history_share_the_daemons_safety_and_audit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("memory.db");
    let conn = crate::common::create_db(&db);
    conn.execute_batch("PRAGMA journal_mode=WAL;").expect("wal");
    drop(conn);
    let config = dir.path().join("caretaker.toml");
    std::fs::write(
        &config,
        "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n",
    )
    .expect("config");
    let cfg = format!("--config.file={}", config.display());

    let out = caretaker()
        .args(["run", "analyze"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(job["status"], "succeeded");
    assert_eq!(job["source"], "cli");

    let out = caretaker()
        .args(["run", "vacuum"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "vacuum is disabled until configured"
    );

    // Another process holds the database's maintenance lock: the run waits, then fails clearly.
    let lock =
        std::fs::File::create(caretaker::responder::lock::lock_path(&db)).expect("lock file");
    lock.lock().expect("lock");
    let out = caretaker()
        .args(["run", "optimize"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        job["error"]
            .as_str()
            .is_some_and(|e| e.contains("another caretaker process")),
        "{job}"
    );
    drop(lock);

    let out = caretaker()
        .arg("history")
        .arg(&cfg)
        .output()
        .expect("history");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for expected in [
        "analyze",
        "succeeded",
        "vacuum",
        "disabled",
        "optimize",
        "failed",
    ] {
        assert!(text.contains(expected), "history lacks {expected}: {text}");
    }
    let out = caretaker()
        .args(["run", "rm_rf"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown action"));
}

#[test]
fn the_demo_copies_its_backup_offsite_encrypted_and_drills_both_copies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    let out = caretaker()
        .arg("demo")
        .arg(format!("--dir={}", demo.display()))
        .args(["--no-serve", "--patterns=300"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let identity = demo.join("backup-identity.txt");
    let mode = std::fs::metadata(&identity)
        .expect("identity")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the age identity is private");
    let cfg = format!("--config.file={}", demo.join("caretaker.toml").display());
    let list = caretaker()
        .args(["backups", "list", "--from=offsite"])
        .arg(&cfg)
        .output()
        .expect("list");
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success() && listing.contains("offsite") && listing.contains("memory-"),
        "the demo's first backup is offsite too: {listing}"
    );

    // The offsite folder holds an age file that Debian's age and zstd read.
    let encrypted = std::fs::read_dir(demo.join("offsite"))
        .expect("offsite folder")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".db.zst.age"))
        .expect("an encrypted backup offsite");
    let restored = dir.path().join("restored.db");
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "age -d -i '{}' '{}' | zstd -d -q -o '{}'",
            identity.display(),
            encrypted.display(),
            restored.display()
        ))
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(&restored).expect("open");
    let patterns: i64 = conn
        .query_row("SELECT COUNT(*) FROM patterns", [], |r| r.get(0))
        .expect("count");
    assert_eq!(patterns, 300);

    // Both copies were drilled, so the drill panels start with data.
    let status = caretaker()
        .arg("status")
        .arg(&cfg)
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("drill local ok") && text.contains("offsite ok"),
        "{text}"
    );
}
