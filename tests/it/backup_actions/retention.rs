//! Retention on real files: names across months, unverified files, other
//! databases' backups and hand-made copies.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;

use caretaker::actions::retention::BackupRetention;
use caretaker::backups::names::{backup_file_name, parse_backup_file_name};
use caretaker::config::Compression;
use sha2::{Digest, Sha256};

use super::{backup_dir, database, names_in, run, DAY};

/// Writes a backup-named file with a sidecar (matching or not) and sets its mtime.
fn fake_backup(dir: &Path, name: &str, verified: bool, mtime: SystemTime) -> u64 {
    let content = format!("backup {name}");
    std::fs::write(dir.join(name), &content).expect("write");
    let hex = format!(
        "{:x}",
        Sha256::digest(if verified {
            content.as_bytes()
        } else {
            b"other"
        })
    );
    let sidecar = format!("{hex}  {name}\n");
    std::fs::write(dir.join(format!("{name}.sha256")), &sidecar).expect("sidecar");
    std::fs::File::options()
        .write(true)
        .open(dir.join(name))
        .and_then(|f| f.set_modified(mtime))
        .expect("mtime");
    (content.len() + sidecar.len()) as u64
}

#[test]
fn retention_deletes_exactly_what_the_rule_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path(), Compression::Zstd);
    let backups = backup_dir(&db);
    std::fs::create_dir_all(&backups).expect("mkdir");
    let now = parse_backup_file_name("x", "x-20261105T020000Z.db.zst").expect("now");

    // Every 5 days for 400 days at 02:00, with every 7th unverified; mtimes
    // are all "today" so only the names can tell the age.
    let mut all = Vec::new();
    let mut sizes = std::collections::BTreeMap::new();
    for i in 0..80u32 {
        let taken = now - DAY * (i * 5);
        let name = backup_file_name("memory", taken, Compression::Zstd);
        let verified = i % 7 != 3;
        sizes.insert(name.clone(), fake_backup(&backups, &name, verified, now));
        all.push((name, i * 5, verified));
    }
    // Not ours: another database's old backup and a seed-style file.
    fake_backup(
        &backups,
        "other-20240101T000000Z.db.zst",
        true,
        now - 700 * DAY,
    );
    fake_backup(
        &backups,
        "memory.db.20240101-020000.backup.gz",
        true,
        now - 700 * DAY,
    );

    // The rule, from the names: YYYYMM is the month, the smallest verified
    // name in a month is its first.
    let mut firsts = std::collections::BTreeMap::<String, String>::new();
    for (name, _, verified) in &all {
        if *verified {
            let month = name["memory-".len().."memory-".len() + 6].to_string();
            let first = firsts.entry(month).or_insert_with(|| name.clone());
            if name < first {
                *first = name.clone();
            }
        }
    }
    let newest_verified = all
        .iter()
        .filter(|b| b.2)
        .map(|b| b.0.clone())
        .max()
        .expect("some");
    let expected: BTreeSet<String> = all
        .iter()
        .filter(|(name, age, verified)| {
            let young = *age < 30;
            let monthly = *verified && firsts.values().any(|f| f == name) && *age < 365;
            !(young || monthly || *name == newest_verified)
        })
        .map(|b| b.0.clone())
        .collect();
    assert!(
        expected.len() > 40,
        "the scenario deletes plenty: {}",
        expected.len()
    );

    let before = names_in(&backups);
    let outcome = run(&BackupRetention, &db, now).expect("retention");
    let after = names_in(&backups);
    let gone: BTreeSet<String> = before.difference(&after).cloned().collect();
    let expected_gone: BTreeSet<String> = expected
        .iter()
        .flat_map(|n| [n.clone(), format!("{n}.sha256")])
        .collect();
    assert_eq!(gone, expected_gone);
    assert!(after.contains(&newest_verified));
    assert!(after.contains("other-20240101T000000Z.db.zst"));
    assert!(after.contains("memory.db.20240101-020000.backup.gz"));
    assert_eq!(outcome.figures["files_removed"], expected.len() as f64);
    let freed: u64 = expected.iter().map(|n| sizes[n]).sum();
    assert_eq!(outcome.figures["bytes_freed"], freed as f64);

    // Far in the future only the newest verified one remains of ours.
    run(&BackupRetention, &db, now + 3000 * DAY).expect("retention");
    let ours: Vec<String> = names_in(&backups)
        .into_iter()
        .filter(|n| n.starts_with("memory-"))
        .collect();
    assert_eq!(
        ours,
        vec![newest_verified.clone(), format!("{newest_verified}.sha256")]
    );
}
