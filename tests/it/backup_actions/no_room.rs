//! A backup folder on a full filesystem: a 64 KiB tmpfs (needs root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use caretaker::actions::backup::Backup;
use caretaker::actions::ActionError;
use caretaker::backups::names::backup_file_name;
use caretaker::config::Compression;
use rusqlite::Connection;

use super::{backup_dir, database, names_in, run, sha256sum_check, DAY};

/// Unmounts when dropped, so a failing assertion does not leave a mount.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path) -> Option<Mount> {
    let uid = Command::new("id").arg("-u").output().expect("run id");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        println!("SKIPPED: not root, cannot mount a small tmpfs");
        return None;
    }
    std::fs::create_dir_all(dir).expect("mkdir");
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(dir)
        .output()
        .expect("run mount");
    if !out.status.success() {
        println!(
            "SKIPPED: mount not permitted: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(Mount(dir.to_path_buf()))
}

/// A database of random (incompressible) blobs, about `bytes` large.
fn random_db(path: &Path, bytes: u64) {
    let _ = std::fs::remove_file(path);
    let conn = Connection::open(path).expect("open");
    conn.execute_batch("CREATE TABLE blobs (b BLOB)")
        .expect("table");
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
         INSERT INTO blobs SELECT randomblob(1000) FROM n",
        [(bytes / 1000) as i64],
    )
    .expect("blobs");
}

#[test]
fn a_full_backup_folder_fails_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let backups = backup_dir(&db);
    let Some(_mount) = mount_tmpfs(&backups) else {
        return;
    };
    // An older backup that must survive.
    let old_time = SystemTime::now() - DAY;
    random_db(&db.path, 3_000);
    run(&Backup, &db, old_time).expect("a small backup fits");
    let old = backup_file_name("memory", old_time, Compression::Zstd);
    let before = names_in(&backups);
    assert_eq!(before.len(), 3, "a backup, its sidecar and its manifest");

    // Far too big: refused before writing anything.
    random_db(&db.path, 1_000_000);
    let err = run(&Backup, &db, SystemTime::now()).expect_err("no room");
    println!("too big: {err}");
    assert!(matches!(err, ActionError::Refused(_)), "{err:?}");
    assert!(err.to_string().contains("no room"), "{err}");
    assert_eq!(names_in(&backups), before);

    // The raw copy fits, the compressed one then does not: ENOSPC mid-way.
    random_db(&db.path, 36_000);
    let err = run(&Backup, &db, SystemTime::now() + Duration::from_secs(1)).expect_err("full");
    println!("filled up: {err}");
    assert!(matches!(err, ActionError::Failed(_)), "{err:?}");
    assert!(err.to_string().contains("no space left"), "{err}");
    assert_eq!(names_in(&backups), before, "no temporary file is left");
    sha256sum_check(&backups, &old);
}
