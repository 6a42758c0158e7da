//! What caretaker puts in an S3 store is ordinary to other S3 clients:
//! Debian's `rclone` lists and downloads a multipart upload (against moto's
//! server), `age` and `zstd` turn it back into the database its manifest
//! describes, and a copy `rclone` makes to another bucket (an operator
//! moving their backups) restores with caretaker on a host with no backup
//! folder at all.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::moto::Moto;
use crate::offsite::{caretaker, local_backups, run_backup, setup, SECRET};

/// `rclone ARGS` with a remote `moto:` configured from the environment
/// alone (path-style requests, moto's loopback endpoint, the test's key).
fn rclone(port: u16, args: &[&str]) -> Output {
    let out = Command::new("rclone")
        .args(args)
        // rclone 1.60's S3 client cannot apply a custom CA bundle to its own
        // transport and refuses to start when one is set (it is not needed
        // for a plain-HTTP loopback endpoint).
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG", "/nonexistent/rclone.conf")
        .env("RCLONE_CONFIG_MOTO_TYPE", "s3")
        .env("RCLONE_CONFIG_MOTO_PROVIDER", "Other")
        .env(
            "RCLONE_CONFIG_MOTO_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .env("RCLONE_CONFIG_MOTO_REGION", "us-east-1")
        .env("RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE", "true")
        .env("RCLONE_CONFIG_MOTO_ACCESS_KEY_ID", "caretaker")
        .env("RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY", SECRET)
        .output()
        .expect("rclone (apt-get install rclone)");
    assert!(
        out.status.success(),
        "rclone {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sh(script: &str) {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn blobs(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .and_then(|c| c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0)))
        .expect("count")
}

#[test]
fn rclone_lists_and_downloads_what_caretaker_uploaded_and_caretaker_restores_what_rclone_copied() {
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    moto.create_bucket("moved");
    let (dir, identity) = setup(moto.port, "caretaker-backups");
    crate::offsite::add_random_blobs(dir.path());
    let (job, log) = run_backup(dir.path());
    assert_eq!(
        job["outcome"]["figures"]["offsite_backups_uploaded"], 1.0,
        "{job} {log}"
    );
    let local = local_backups(dir.path()).pop().expect("a local backup");
    let name = local
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();

    // rclone sees the three objects, the data one above a part in size.
    let listed = rclone(
        moto.port,
        &["lsf", "--format=ps", "moto:caretaker-backups/hosts/db1"],
    );
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let mut files: Vec<(&str, u64)> = listed
        .lines()
        .filter_map(|l| l.split_once(';'))
        .map(|(f, s)| (f, s.parse().expect("size")))
        .collect();
    files.sort();
    let expected = [
        format!("{name}.age"),
        format!("{name}.manifest.json"),
        format!("{name}.sha256"),
    ];
    assert_eq!(
        files.iter().map(|(f, _)| f.to_string()).collect::<Vec<_>>(),
        expected,
        "{listed}"
    );
    assert!(files[0].1 > 16 << 20, "{listed}");

    // rclone downloads; age and zstd give back the file the sidecar and the
    // manifest describe.
    let d = dir.path();
    let remote = |file: &str| format!("moto:caretaker-backups/hosts/db1/{file}");
    rclone(
        moto.port,
        &[
            "copyto",
            &remote(&expected[0]),
            &d.join("dl.age").to_string_lossy(),
        ],
    );
    let manifest: Value =
        serde_json::from_slice(&rclone(moto.port, &["cat", &remote(&expected[1])]).stdout)
            .expect("manifest json");
    let sidecar = String::from_utf8(rclone(moto.port, &["cat", &remote(&expected[2])]).stdout)
        .expect("sidecar");
    sh(&format!(
        "cd '{}' && age -d -i '{}' -o dl.db.zst dl.age && zstd -d -q dl.db.zst -o dl.db",
        d.display(),
        identity.display()
    ));
    let zst = caretaker::backups::sidecar::sha256_file(&d.join("dl.db.zst")).expect("sha");
    assert!(sidecar.starts_with(zst.as_str()), "{sidecar} vs {zst}");
    let db = caretaker::backups::sidecar::sha256_file(&d.join("dl.db")).expect("sha");
    assert_eq!(manifest["sqlite_sha256"], db.as_str());
    assert_eq!(manifest["row_counts"]["blobs"], 200);
    assert_eq!(blobs(&d.join("dl.db")), 200);

    // The operator moves the backups to another bucket with rclone; on a new
    // host (no backup folder) caretaker restores from the copy.
    rclone(
        moto.port,
        &[
            "copy",
            "moto:caretaker-backups/hosts/db1",
            "moto:moved/hosts/db1",
        ],
    );
    let config = d.join("caretaker.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("s3://caretaker-backups/hosts/db1", "s3://moved/hosts/db1"),
    )
    .expect("config");
    std::fs::remove_dir_all(d.join("backups")).expect("rm backups");
    rusqlite::Connection::open(d.join("memory.db"))
        .and_then(|c| c.execute_batch("DELETE FROM blobs"))
        .expect("lose the rows");
    let (ok, text) = caretaker(d, &["backups", "verify", "--from=offsite"]);
    assert!(ok, "{text}");
    let (ok, text) = caretaker(d, &["restore", "--from=offsite"]);
    assert!(ok, "{text}");
    assert_eq!(blobs(&d.join("memory.db")), 200, "{text}");
    assert!(!text.contains(SECRET), "{text}");
}
