//! `caretaker status`: one line per database and an exit code a cron job or
//! a monitoring check can act on (0 well, 1 needs a person, 2 cannot tell).

use std::path::Path;
use std::process::{Command, Output};

use crate::common::create_db;

fn status(config: &Path, format: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .arg("status")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--format={format}"))
        .output()
        .expect("run status")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

fn demo(dir: &Path) -> std::path::PathBuf {
    let options = caretaker::demo::DemoOptions {
        patterns: 200,
        pattern_bytes: 100,
        listen_address: None,
    };
    let config = caretaker::demo::prepare(dir, &options).expect("demo");
    let loaded = caretaker::config::Config::load(&config).expect("config");
    caretaker::demo::first_backup(&loaded).expect("first backup");
    config
}

#[test]
fn status_needs_a_person_once_the_newest_backup_is_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = demo(dir.path());

    let out = status(&config, "json");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc = json(&out);
    assert_eq!(doc["verdict"], "ok");
    let db = &doc["databases"][0];
    assert_eq!(db["database"], "memory");
    assert_eq!(db["up"], true);
    assert_eq!(db["verified_backups"], 1);
    assert!(db["newest_backup_age_seconds"].as_f64().is_some(), "{db}");
    let size = std::fs::metadata(dir.path().join("memory.db"))
        .expect("size")
        .len();
    assert_eq!(db["size_bytes"].as_u64(), Some(size));

    for entry in std::fs::read_dir(dir.path().join("backups")).expect("backups") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove");
    }
    let out = status(&config, "text");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("no verified backup"), "{text}");
    // Not a terminal: no colour.
    assert!(!text.contains('\x1b'), "{text:?}");
}

#[test]
fn status_colours_its_verdict_on_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = demo(dir.path());
    let command = format!(
        "{} status --config.file={}",
        env!("CARGO_BIN_EXE_caretaker"),
        config.display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script (util-linux)");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\x1b[32mok\x1b[0m"), "{text:?}");
}

#[test]
fn a_missing_database_is_down_and_is_not_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("caretaker.toml");
    std::fs::write(
        &config,
        "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n",
    )
    .expect("write");
    let out = status(&config, "json");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let doc = json(&out);
    assert_eq!(doc["databases"][0]["up"], false);
    assert_eq!(doc["verdict"], "needs_person");
    assert!(!dir.path().join("memory.db").exists());
    // Reading the status starts no state database either.
    assert!(!dir.path().join("state").exists());
}

#[test]
fn status_cannot_tell_when_the_backup_folder_cannot_be_read_or_the_config_is_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_db(&dir.path().join("memory.db"));
    // A file where the backup folder should be: listing it fails.
    std::fs::write(dir.path().join("backups"), "").expect("write");
    let config = dir.path().join("caretaker.toml");
    std::fs::write(
        &config,
        "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n[database.backup]\ndir = \"backups\"\n",
    )
    .expect("write");
    let out = status(&config, "json");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["verdict"], "unknown");

    std::fs::write(&config, "[[database]]\nname = \"memory\"\n").expect("write");
    let out = status(&config, "text");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(!out.stderr.is_empty());
}

#[test]
fn failed_runs_and_an_open_breaker_are_shown_but_need_no_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_db(&dir.path().join("memory.db"));
    let config = dir.path().join("caretaker.toml");
    std::fs::write(
        &config,
        "[[database]]\nname = \"memory\"\npath = \"memory.db\"\n\
         [responder]\nbreaker_failures = 2\n\
         [[command]]\nname = \"fail\"\nargv = [\"/bin/false\"]\n",
    )
    .expect("write");
    for _ in 0..2 {
        let run = Command::new(env!("CARGO_BIN_EXE_caretaker"))
            .arg("run")
            .arg("command:fail")
            .arg(format!("--config.file={}", config.display()))
            .output()
            .expect("run");
        assert_eq!(run.status.code(), Some(1), "{run:?}");
    }
    let out = status(&config, "json");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let db = &json(&out)["databases"][0];
    assert_eq!(db["failed_jobs_last_day"], 2, "{db}");
    assert_eq!(
        db["open_breakers"],
        serde_json::json!(["command:fail"]),
        "{db}"
    );
}

fn run_drill(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .arg("run")
        .arg("restore_drill")
        .arg(format!("--config.file={}", config.display()))
        .output()
        .expect("run restore_drill")
}

#[test]
fn a_failed_last_drill_needs_a_person_and_a_passing_one_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = demo(dir.path());
    let started = std::time::Instant::now();
    let drill = run_drill(&config);
    assert!(drill.status.success(), "{drill:?}");
    let out = status(&config, "json");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let local = &json(&out)["databases"][0]["drills"]["local"];
    assert_eq!(local["ok"], true, "{local}");
    let age = local["age_seconds"].as_f64().expect("age");
    assert!(
        (0.0..=started.elapsed().as_secs_f64()).contains(&age),
        "{age}"
    );

    // The newest backup's manifest now disagrees with the backup: the drill fails.
    let newest = std::fs::read_dir(dir.path().join("backups"))
        .expect("backups")
        .map(|e| e.expect("entry").path())
        .filter(|p| crate::common::is_backup_data(&p.to_string_lossy()))
        .max()
        .expect("a backup");
    let manifest = caretaker::backups::manifest::manifest_of(&newest);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).expect("manifest")).expect("json");
    let rows = doc["row_counts"]["patterns"].as_u64().expect("rows");
    doc["row_counts"]["patterns"] = (rows + 1).into();
    std::fs::write(&manifest, serde_json::to_vec(&doc).expect("json")).expect("write");
    let drill = run_drill(&config);
    assert!(!drill.status.success(), "{drill:?}");

    let out = status(&config, "text");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("drill local FAILED"), "{text}");
    assert!(text.contains("last local restore drill failed"), "{text}");
    let out = status(&config, "json");
    assert_eq!(json(&out)["verdict"], "needs_person");
}

#[test]
fn the_offsite_copy_age_is_shown_when_configured_and_an_unreachable_store_is_a_warning() {
    let moto = crate::moto::Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, _identity) = crate::offsite::setup(moto.port, "caretaker-backups");
    let config = dir.path().join("caretaker.toml");
    let out = status(&config, "json");
    let offsite = &json(&out)["databases"][0]["offsite"];
    assert_eq!(offsite["reachable"], true, "{offsite}");
    assert!(offsite["newest_age_seconds"].is_null(), "{offsite}");

    let started = std::time::Instant::now();
    let (job, log) = crate::offsite::run_backup(dir.path());
    assert_eq!(job["status"], "succeeded", "{job}\n{log}");
    let out = status(&config, "json");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let offsite = &json(&out)["databases"][0]["offsite"];
    let age = offsite["newest_age_seconds"].as_f64().expect("an age");
    // Remote times have a second's resolution.
    assert!(
        (0.0..=started.elapsed().as_secs_f64() + 1.0).contains(&age),
        "{age}"
    );
    let text = String::from_utf8(status(&config, "text").stdout).expect("utf-8");
    assert!(text.contains("  offsite "), "{text}");
    assert!(!text.contains("offsite unreachable"), "{text}");

    drop(moto);
    let out = status(&config, "text");
    // CaretakerOffsiteUnreachable is a warning: shown, no person paged.
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.contains("offsite unreachable"), "{text}");
}
