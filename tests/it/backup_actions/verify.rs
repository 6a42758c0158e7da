//! verify_backups finds damage, names it, and deletes nothing.

use std::time::SystemTime;

use caretaker::actions::backup::Backup;
use caretaker::actions::verify_backups::VerifyBackups;
use caretaker::actions::ActionError;
use caretaker::backups::names::backup_file_name;
use caretaker::config::Compression;
use sha2::{Digest, Sha256};

use super::{add_patterns, backup_dir, database, flip_byte, names_in, run, wal_db, DAY};

#[test]
fn verify_backups_names_the_damaged_one_and_deletes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let conn = wal_db(&db.path, 1_000);
    let t0 = SystemTime::now() - 3 * DAY;
    let mut names = Vec::new();
    for i in 0..3u32 {
        add_patterns(&conn, 1_000 * u64::from(i + 1), 1_000 * u64::from(i + 2));
        let t = t0 + DAY * i;
        run(&Backup, &db, t).expect("backup");
        names.push(backup_file_name("memory", t, Compression::Zstd));
    }
    let backups = backup_dir(&db);
    let ok = run(&VerifyBackups, &db, SystemTime::now()).expect("all good");
    assert_eq!(
        (
            ok.figures["checked"],
            ok.figures["ok"],
            ok.figures["failed"]
        ),
        (3.0, 3.0, 0.0)
    );

    let damaged = backups.join(&names[1]);
    let len = std::fs::metadata(&damaged).expect("meta").len();
    flip_byte(&damaged, len / 2);
    let before = names_in(&backups);
    let err = run(&VerifyBackups, &db, SystemTime::now()).expect_err("one is damaged");
    let text = err.to_string();
    println!("{text}");
    assert!(matches!(err, ActionError::Failed(_)));
    assert!(
        text.contains(&names[1]) && text.contains("checksum"),
        "{text}"
    );
    assert!(
        !text.contains(&names[0]) && !text.contains(&names[2]),
        "{text}"
    );
    assert_eq!(
        names_in(&backups),
        before,
        "nothing deleted, no temporary left"
    );

    // With a sidecar rewritten to match, the damage is found by decompression.
    let hex = format!(
        "{:x}",
        Sha256::digest(std::fs::read(&damaged).expect("read"))
    );
    std::fs::write(
        backups.join(format!("{}.sha256", names[1])),
        format!("{hex}  {}\n", names[1]),
    )
    .expect("sidecar");
    let text = run(&VerifyBackups, &db, SystemTime::now())
        .expect_err("still damaged")
        .to_string();
    assert!(
        text.contains(&names[1]) && text.contains("cannot decompress"),
        "{text}"
    );
    assert_eq!(names_in(&backups), before);
}
