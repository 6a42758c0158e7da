//! The backup folder is watched: backups show within seconds, and a file
//! counts as a backup only when its `.sha256` sidecar matches.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::common::{create_db, value, Caretaker};

fn write_backup(dir: &std::path::Path, name: &str, content: &[u8], checksum_of: &[u8]) {
    std::fs::write(dir.join(name), content).expect("backup");
    let hex = format!("{:x}", Sha256::digest(checksum_of));
    std::fs::write(
        dir.join(format!("{name}.sha256")),
        format!("{hex}  {name}\n"),
    )
    .expect("sidecar");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_noticed_at_once_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_db(&dir.path().join("memory.db"));
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).expect("mkdir");
    // A long interval: only the folder watch can make the test pass in time.
    let config = "[collect]\nbackups_interval = \"1h\"\n[[database]]\nname = \"memory\"\npath = \"memory.db\"\n[database.backup]\ndir = \"backups\"\nmax_age = \"2h\"\n";
    let ct = Caretaker::start(dir, config).await;
    let m = ct.metrics().await;
    assert_eq!(value(&m, "caretaker_backup_files", &[]), Some(0.0));
    assert_eq!(
        value(&m, "caretaker_backup_max_age_seconds", &[]),
        Some(7200.0)
    );
    assert!(value(&m, "caretaker_backup_last_success_timestamp_seconds", &[]).is_none());

    write_backup(
        &backups,
        "memory-1.db.zst",
        b"first backup",
        b"first backup",
    );
    let m = ct
        .wait_for("the first backup", Duration::from_secs(5), |m| {
            value(m, "caretaker_backup_files", &[]) == Some(1.0)
        })
        .await;
    assert_eq!(
        value(&m, "caretaker_backup_last_size_bytes", &[]),
        Some(12.0)
    );
    assert_eq!(
        value(&m, "caretaker_backup_last_verified_ok", &[]),
        Some(1.0)
    );
    let modified = std::fs::metadata(backups.join("memory-1.db.zst"))
        .expect("meta")
        .modified()
        .expect("mtime");
    let mtime = modified
        .duration_since(std::time::UNIX_EPOCH)
        .expect("epoch")
        .as_secs_f64();
    let reported =
        value(&m, "caretaker_backup_last_success_timestamp_seconds", &[]).expect("timestamp");
    assert!((reported - mtime).abs() < 1e-3, "{reported} vs {mtime}");

    // A newer file whose checksum does not match is not a backup.
    write_backup(&backups, "memory-2.db.zst", b"tampered", b"original");
    let newer = std::fs::File::options()
        .write(true)
        .open(backups.join("memory-2.db.zst"))
        .expect("open");
    newer
        .set_modified(modified + Duration::from_secs(60))
        .expect("set mtime");
    std::fs::write(backups.join("memory-3.db.zst.tmp"), b"in progress").expect("temp");
    let m = ct
        .wait_for("the bad backup", Duration::from_secs(5), |m| {
            value(m, "caretaker_backup_unverified_files", &[]) == Some(1.0)
        })
        .await;
    assert_eq!(value(&m, "caretaker_backup_files", &[]), Some(1.0));
    assert_eq!(
        value(&m, "caretaker_backup_last_verified_ok", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "caretaker_backup_last_success_timestamp_seconds", &[]),
        Some(reported)
    );

    std::fs::remove_file(backups.join("memory-1.db.zst")).expect("remove");
    ct.wait_for("the removal", Duration::from_secs(5), |m| {
        value(m, "caretaker_backup_files", &[]) == Some(0.0)
    })
    .await;
    ct.stop().await;
}

/// One watcher serves every database's folder: an event reaches the job of
/// the folder it happened in, and a folder removed shows at once too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_backup_folder_event_refreshes_its_own_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = String::from("[collect]\nbackups_interval = \"1h\"\n");
    for name in ["a", "b", "c"] {
        create_db(&dir.path().join(format!("{name}.db")));
        std::fs::create_dir_all(dir.path().join("backups").join(name)).expect("mkdir");
        config.push_str(&format!(
            "[[database]]\nname = \"{name}\"\npath = \"{name}.db\"\n[database.backup]\ndir = \"backups/{name}\"\n"
        ));
    }
    let backups = dir.path().join("backups");
    let ct = Caretaker::start(dir, &config).await;
    let files = |m: &[crate::common::Sample], db: &str| {
        value(m, "caretaker_backup_files", &[("database", db)])
    };
    let m = ct.metrics().await;
    assert_eq!(
        ["a", "b", "c"].map(|db| files(&m, db)),
        [Some(0.0); 3],
        "every folder listed at start"
    );
    write_backup(&backups.join("b"), "b-1.db.zst", b"backup", b"backup");
    let m = ct
        .wait_for("b's backup", Duration::from_secs(5), |m| {
            files(m, "b") == Some(1.0)
        })
        .await;
    assert_eq!([files(&m, "a"), files(&m, "c")], [Some(0.0); 2]);

    std::fs::remove_dir_all(backups.join("c")).expect("rm");
    ct.wait_for("c's folder to be gone", Duration::from_secs(5), |m| {
        value(m, "caretaker_backup_dir_accessible", &[("database", "c")]) == Some(0.0)
    })
    .await;
}

/// Two databases backed up into one folder: an event there refreshes both,
/// so each sees its own new backup at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_backup_folder_refreshes_every_database_it_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = String::from("[collect]\nbackups_interval = \"1h\"\n");
    for name in ["x", "y"] {
        create_db(&dir.path().join(format!("{name}.db")));
        config.push_str(&format!(
            "[[database]]\nname = \"{name}\"\npath = \"{name}.db\"\n[database.backup]\ndir = \"shared\"\n"
        ));
    }
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    let ct = Caretaker::start(dir, &config).await;
    let files = |m: &[crate::common::Sample], db: &str| {
        value(m, "caretaker_backup_files", &[("database", db)])
    };
    let m = ct.metrics().await;
    assert_eq!([files(&m, "x"), files(&m, "y")], [Some(0.0); 2]);
    for (i, db) in ["x", "y"].into_iter().enumerate() {
        let taken = std::time::SystemTime::now() - Duration::from_secs(60 * (i as u64 + 1));
        let name = caretaker::backups::names::backup_file_name(
            db,
            taken,
            caretaker::config::Compression::Zstd,
        );
        write_backup(&shared, &name, b"backup", b"backup");
        ct.wait_for(&format!("{db}'s backup"), Duration::from_secs(5), |m| {
            files(m, db) == Some(1.0)
        })
        .await;
    }
}
