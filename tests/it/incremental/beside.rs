//! A chain's folder (`<backup>.chain/`) and a manifest (`NAME.manifest.json`)
//! beside the same full backup: both belong to it. Listing counts them in the
//! folder but never as backups, a drill and a one-table restore take the full
//! backup (or, with `--at`, the rebuilt state) and not the folder, stale
//! temporaries' cleanup leaves both alone, and retention removes them with
//! their backup.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use caretaker::actions::backup::Backup;
use caretaker::actions::retention::BackupRetention;
use caretaker::backups::chain::take::Taken;
use caretaker::backups::drill::drill_local;
use caretaker::backups::listing::{list_folder, ChecksumCache};
use caretaker::backups::restore::{list_backups, restore_table, RestoreChoice, TableMode};
use caretaker::backups::BackupSet;
use caretaker::config::Compression;
use caretaker::progress::Reporter;

use super::{markers, newest_chain, snapshot};
use crate::backup_actions::{backup_dir, database, names_in, run, wal_db};

const DAY: Duration = Duration::from_secs(86_400);

/// Bytes of every file under `dir`, one level of folders down.
fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| {
            let e = e.expect("entry");
            let meta = e.metadata().expect("meta");
            if meta.is_dir() {
                bytes_under(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_chain_folder_and_a_manifest_are_part_of_their_backup_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut db = database(dir.path(), Compression::Zstd);
    if let Some(b) = db.backup.as_mut() {
        // The old backup's chain may continue; only the 30 days count.
        b.full_interval = 3650 * DAY;
        b.monthly_retention = Duration::ZERO;
    }
    let conn = wal_db(&db.path, 500);
    conn.execute_batch("CREATE TABLE markers (id INTEGER PRIMARY KEY, note TEXT)")
        .expect("markers");
    let now = SystemTime::now();
    run(&Backup, &db, now - 50 * DAY).expect("old full backup");
    conn.execute("INSERT INTO markers VALUES (1, 'after the backup')", [])
        .expect("marker");
    assert!(matches!(snapshot(&db), Taken::Delta { sequence: 1, .. }));
    let chain = newest_chain(&db);
    let old = file_name(&chain.base.path);
    let backups = backup_dir(&db);
    let beside = BTreeSet::from([
        old.clone(),
        format!("{old}.sha256"),
        format!("{old}.manifest.json"),
        format!("{old}.chain"),
    ]);
    assert_eq!(names_in(&backups), beside);

    // Listing: one backup, and the folder's size counts the chain's files.
    let listed: Vec<String> = list_backups(&db)
        .expect("list")
        .iter()
        .map(|b| file_name(&b.path))
        .collect();
    assert_eq!(listed, vec![old.clone()]);
    let deadline = Instant::now() + Duration::from_secs(300);
    let (_, total) = list_folder(&backups, deadline, &mut ChecksumCache::default()).expect("list");
    assert_eq!(total, bytes_under(&backups));
    assert!(chain.bytes() > 0, "the chain holds a delta");

    // The drill restores the full backup and matches its manifest.
    let set = BackupSet::of(&db).expect("set");
    let drill = drill_local(&set, deadline);
    assert!(drill.ok(), "{:?}", drill.failure);
    assert_eq!(drill.backup.as_deref(), Some(old.as_str()));

    // One table: --at rebuilds the state with the marker, the newest full
    // backup has none.
    conn.execute("DELETE FROM markers", []).expect("delete");
    let at = chain.links[0].taken;
    let report = restore_table(
        &db,
        RestoreChoice::At(at),
        "markers",
        TableMode::Replace,
        now,
        &Reporter::none(),
    )
    .expect("table at a moment");
    assert_eq!(report.taken, Some(at));
    assert_eq!(markers(&db.path), BTreeSet::from([1]));
    let report = restore_table(
        &db,
        RestoreChoice::Newest,
        "markers",
        TableMode::Replace,
        now + Duration::from_secs(1),
        &Reporter::none(),
    )
    .expect("table from the newest backup");
    assert_eq!(file_name(&report.backup), old);
    assert_eq!(report.taken, None);
    assert!(markers(&db.path).is_empty());

    // Stale temporaries' cleanup keeps the chain and the manifest.
    set.remove_stale_temporaries().expect("cleanup");
    assert_eq!(names_in(&backups), beside);

    // The next full backup, a day later. The old one is as old as its
    // chain's newest link: kept now, past retention 40 days later, and then
    // it goes whole.
    run(&Backup, &db, now + DAY).expect("new full backup");
    assert_eq!(
        names_in(&backups).len(),
        7,
        "the backup's own retention kept the old one"
    );
    let before = bytes_under(&backups);
    run(&BackupRetention, &db, now).expect("retention");
    assert_eq!(
        names_in(&backups).len(),
        7,
        "the chain's newest link is recent"
    );
    let outcome = run(&BackupRetention, &db, now + 40 * DAY).expect("retention");
    let new = file_name(&list_backups(&db).expect("list")[0].path);
    assert_ne!(new, old);
    assert_eq!(
        names_in(&backups),
        BTreeSet::from([
            new.clone(),
            format!("{new}.sha256"),
            format!("{new}.manifest.json"),
        ])
    );
    assert_eq!(outcome.figures["files_removed"], 1.0);
    assert_eq!(
        outcome.figures["bytes_freed"],
        (before - bytes_under(&backups)) as f64
    );
}
