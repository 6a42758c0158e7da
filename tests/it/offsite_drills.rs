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

/// Runs `action` in this process on the configuration in `dir`, at `now`.
fn run_at(
    dir: &Path,
    action: &dyn caretaker::actions::Action,
    now: std::time::SystemTime,
) -> Result<caretaker::actions::Outcome, caretaker::actions::ActionError> {
    let config = caretaker::config::Config::load(&dir.join("caretaker.toml")).expect("config");
    let db = &config.databases[0];
    action.run(&caretaker::actions::ActionContext {
        database: db,
        dry_run: false,
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(120),
        now,
        stop: Default::default(),
        progress: Default::default(),
    })
}

/// The backup names of the store's objects: `NAME` of `NAME.age`,
/// `NAME.sha256` and `NAME.manifest.json`, each with how many it has.
fn remote_objects(moto: &Moto) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for key in moto.keys("caretaker-backups", "hosts/db1/") {
        let file = key.rsplit('/').next().unwrap_or_default();
        let name = [".age", ".sha256", ".manifest.json"]
            .iter()
            .find_map(|s| file.strip_suffix(s))
            .unwrap_or(file);
        *out.entry(name.to_string()).or_default() += 1;
    }
    out
}

#[test]
fn remote_retention_follows_the_local_plan_and_keeps_the_newest_remote_backup_that_verifies() {
    use caretaker::actions::{backup::Backup, retention::BackupRetention};
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, _identity) = setup(moto.port, "caretaker-backups");
    let day = std::time::Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    for age in [12, 6, 0] {
        run_at(dir.path(), &Backup, now - age * day).expect("backup");
    }
    let uploaded = remote_objects(&moto);
    assert_eq!(uploaded.len(), 3, "{uploaded:?}");
    assert!(uploaded.values().all(|n| *n == 3), "{uploaded:?}");
    let names: Vec<&String> = uploaded.keys().collect();
    let (oldest, middle, newest) = (names[0].clone(), names[1].clone(), names[2].clone());

    // The newest remote copy no longer decrypts to what its sidecar says.
    moto.put(&format!("{PREFIX}/{newest}.age"), b"not an age file");
    // A day of remote retention (the local one stays at its default).
    let config = dir.path().join("caretaker.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("retention = \"1d\"\nmonthly_retention = \"1d\"\n");
    std::fs::write(&config, text).expect("config");

    let outcome = run_at(dir.path(), &BackupRetention, now).expect("retention");
    println!("{}", outcome.summary);
    assert_eq!(
        outcome.figures["offsite_backups_removed"], 1.0,
        "{outcome:?}"
    );
    let left = remote_objects(&moto);
    // The oldest goes whole; the middle one is the newest that verifies and
    // stays although past retention; the damaged newest is young and stays.
    assert_eq!(
        left,
        std::collections::BTreeMap::from([(middle.clone(), 3), (newest.clone(), 3)]),
        "{oldest} removed"
    );
    // Locally nothing was past the default retention.
    assert_eq!(
        std::fs::read_dir(dir.path().join("backups"))
            .expect("backups")
            .filter_map(|e| e.ok())
            .filter(|e| crate::common::is_backup_data(&e.file_name().to_string_lossy()))
            .count(),
        3
    );
    // Without the identity nothing can be checked, and nothing is deleted.
    let text = std::fs::read_to_string(&config).expect("config");
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("decrypt_identity_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, without).expect("config");
    let outcome = run_at(dir.path(), &BackupRetention, now + 30 * day).expect("retention");
    assert!(
        outcome.summary.contains("needs decrypt_identity_file"),
        "{}",
        outcome.summary
    );
    assert_eq!(remote_objects(&moto), left);
}

#[test]
fn an_upload_cut_midway_leaves_nothing_that_counts_and_the_next_backup_uploads_both() {
    use crate::moto::Forwarder;
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    // Uploads go through a forwarder, cut after 17 MiB: within the second
    // 16 MiB part of a multipart upload of an incompressible database.
    let mut forwarder = Forwarder::start(moto.port, 0, Some(17 << 20));
    let port = forwarder.port;
    let (dir, _identity) = setup(port, "caretaker-backups");
    crate::offsite::add_random_blobs(dir.path());

    let (job, log) = run_backup(dir.path());
    assert_eq!(job["status"], "succeeded", "the local backup: {job}\n{log}");
    assert!(forwarder.stopped(), "the upload was cut: {log}");
    assert_eq!(
        job["outcome"]["figures"]["offsite_upload_failed"], 1.0,
        "{job}"
    );
    assert!(!log.contains(crate::offsite::SECRET), "{log}");
    // Nothing counts: no manifest was written, whatever else is there.
    let objects = remote_objects(&moto);
    assert!(objects.values().all(|n| *n < 3), "{objects:?}");
    assert!(
        !moto
            .keys("caretaker-backups", "hosts/db1/")
            .iter()
            .any(|k| k.ends_with(".manifest.json")),
        "{objects:?}"
    );

    // The store is back: it lists no backup, and the next backup uploads both.
    forwarder.stop();
    let _forwarder = Forwarder::start(moto.port, port, None);
    let (ok, listed) = caretaker(dir.path(), &["backups", "list", "--from=offsite"]);
    assert!(ok, "{listed}");
    assert!(!listed.contains(".db.zst"), "no remote backup: {listed}");
    let (job, log) = run_backup(dir.path());
    assert_eq!(job["status"], "succeeded", "{job}\n{log}");
    assert_eq!(
        job["outcome"]["figures"]["offsite_backups_uploaded"], 2.0,
        "{job}"
    );
    let objects = remote_objects(&moto);
    assert_eq!(objects.len(), 2, "{objects:?}");
    assert!(objects.values().all(|n| *n == 3), "{objects:?}");
    let (ok, verified) = caretaker(dir.path(), &["backups", "verify", "--from=offsite"]);
    assert!(ok, "{verified}");
    assert!(!verified.contains(crate::offsite::SECRET), "{verified}");
}

#[test]
fn remote_retention_removes_uploads_cut_short_once_a_day_old_and_nothing_else() {
    use caretaker::actions::{backup::Backup, retention::BackupRetention};
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, _identity) = setup(moto.port, "caretaker-backups");
    let now = std::time::SystemTime::now();
    run_at(dir.path(), &Backup, now).expect("backup");
    let complete = remote_objects(&moto);
    // What a killed upload leaves (data and sidecar, no manifest), another
    // database's object under the same prefix, and a stray file.
    let cut = "memory-20261101T000000Z.db.zst";
    moto.put(&format!("{PREFIX}/{cut}.age"), b"half an upload");
    moto.put(&format!("{PREFIX}/{cut}.sha256"), b"0000  x\n");
    let others = [
        "hosts/db1/other-20261101T000000Z.db.zst.age",
        "hosts/db1/notes.txt",
    ];
    for key in others {
        moto.put(&format!("caretaker-backups/{key}"), b"not caretaker's");
    }
    let keys = || moto.keys("caretaker-backups", "hosts/db1/");
    let before = keys();

    // Within the grace an upload may still be under way: all stays.
    let outcome = run_at(dir.path(), &BackupRetention, now).expect("retention");
    assert_eq!(
        outcome.figures["offsite_incomplete_removed"], 0.0,
        "{outcome:?}"
    );
    assert_eq!(keys(), before);

    // Two days on (the store's clock says they are older than a day).
    let later = now + std::time::Duration::from_secs(2 * 86_400);
    let outcome = run_at(dir.path(), &BackupRetention, later).expect("retention");
    println!("{}", outcome.summary);
    assert_eq!(
        outcome.figures["offsite_incomplete_removed"], 2.0,
        "{outcome:?}"
    );
    assert!(
        outcome.summary.contains("2 objects of uploads cut short"),
        "{}",
        outcome.summary
    );
    let left = keys();
    assert!(!left.iter().any(|k| k.contains(cut)), "{left:?}");
    for key in others {
        assert!(
            left.iter().any(|k| k == key),
            "{key} is not caretaker's to remove: {left:?}"
        );
    }
    let mut after = remote_objects(&moto);
    after.retain(|name, _| complete.contains_key(name));
    assert_eq!(after, complete, "the complete backup stays whole");
}
