//! Restore drills of offsite backups against moto's S3 server: the newest
//! remote backup is downloaded, decrypted and compared with the remote
//! manifest; a remote manifest that disagrees fails the offsite drill and
//! names the table, while the local drill still passes.

use std::path::Path;

use caretaker::backups::drill::{recorded, DrillSource};
use serde_json::Value;

use crate::moto::Moto;
use crate::offsite::{caretaker, run_backup, setup};

const PREFIX: &str = "caretaker-backups/hosts/db1";

/// The names of the local backups' data files, sorted.
fn newest_local(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("backups"))
        .expect("backups")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| crate::common::is_backup_data(n))
        .collect();
    names.sort();
    names.pop().expect("a backup")
}

#[test]
fn a_drill_checks_the_newest_remote_backup_against_its_manifest() {
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, _identity) = setup(moto.port, "caretaker-backups");
    let (job, log) = run_backup(dir.path());
    assert_eq!(job["status"], "succeeded", "{job}\n{log}");
    let before = std::fs::read(dir.path().join("memory.db")).expect("live");

    let (ok, out) = caretaker(dir.path(), &["run", "restore_drill"]);
    assert!(ok, "{out}");
    // The job's JSON comes first (stdout), the log after it.
    let job: Value = serde_json::Deserializer::from_str(&out)
        .into_iter()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("a job: {out}"));
    let figures = &job["outcome"]["figures"];
    assert_eq!(figures["local_ok"], 1.0, "{job}");
    assert_eq!(figures["offsite_ok"], 1.0, "{job}");
    let record = recorded(&dir.path().join("backups"), "memory");
    assert!(record[&DrillSource::Offsite].success);

    // The remote manifest now disagrees with what the remote backup holds.
    let name = newest_local(dir.path());
    let key = format!("{PREFIX}/{name}.manifest.json");
    let mut manifest: Value = serde_json::from_slice(&moto.get(&key)).expect("manifest");
    let rows = manifest["row_counts"]["patterns"].as_u64().expect("rows");
    manifest["row_counts"]["patterns"] = Value::from(rows + 7);
    moto.put(&key, &serde_json::to_vec(&manifest).expect("json"));

    let (ok, out) = caretaker(dir.path(), &["run", "restore_drill"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "offsite failed: {name}: differs from its manifest: table patterns: {rows} rows, the manifest says {}",
            rows + 7
        )),
        "{out}"
    );
    assert!(out.contains("local: "), "the local drill still ran: {out}");
    let record = recorded(&dir.path().join("backups"), "memory");
    assert!(record[&DrillSource::Local].success);
    assert!(!record[&DrillSource::Offsite].success);
    assert_eq!(
        std::fs::read(dir.path().join("memory.db")).expect("live"),
        before,
        "the live database"
    );
    let scratch = std::fs::read_dir(dir.path().join("backups"))
        .expect("backups")
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".restore-drill.")
        });
    assert!(!scratch, "no scratch folder left");
}

#[test]
fn an_unreachable_store_fails_the_offsite_drill_not_the_local_one() {
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, _identity) = setup(moto.port, "caretaker-backups");
    let (job, log) = run_backup(dir.path());
    assert_eq!(job["status"], "succeeded", "{job}\n{log}");
    drop(moto);
    let (ok, out) = caretaker(dir.path(), &["run", "restore_drill"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("offsite failed: cannot list the offsite store"),
        "{out}"
    );
    assert!(!out.contains(crate::offsite::SECRET), "{out}");
    let record = recorded(&dir.path().join("backups"), "memory");
    assert!(record[&DrillSource::Local].success);
    assert!(!record[&DrillSource::Offsite].success);
}
