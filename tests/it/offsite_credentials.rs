//! A `credentials_file` that is malformed, missing or unreadable. moto
//! accepts any key and does not check signatures, so what a real store
//! would refuse is tested where caretaker itself must refuse it: the upload
//! fails with a clear error, is counted in
//! `caretaker_offsite_upload_failures_total`, deletes nothing on either side,
//! and the secret reaches no log, job answer, page or metric.

use crate::common::{value, Caretaker};
use crate::moto::Moto;
use crate::offsite::{failures, local_backups, run_backup, setup, SECRET};

/// What is wrong with the file, how to make it so, what the log must say.
type Breakage<'a> = (&'a str, &'a dyn Fn(&std::path::Path), &'a str);

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_credentials_file_fails_the_upload_counts_it_and_deletes_nothing() {
    let moto = Moto::start();
    moto.create_bucket("caretaker-backups");
    let (dir, _) = setup(moto.port, "caretaker-backups");
    let path = dir.path().to_path_buf();
    let config = format!(
        "[collect]\nbackups_interval = \"1s\"\n{}",
        std::fs::read_to_string(path.join("caretaker.toml")).expect("config")
    );
    let ct = Caretaker::start(dir, &config).await;
    let backup = |p: std::path::PathBuf| async move {
        tokio::task::spawn_blocking(move || run_backup(&p))
            .await
            .expect("join")
    };
    let (job, log) = backup(path.clone()).await;
    assert_eq!(
        job["outcome"]["figures"]["offsite_backups_uploaded"], 1.0,
        "{job} {log}"
    );
    let remote = moto.keys("caretaker-backups", "hosts/db1/");
    assert_eq!(remote.len(), 3, "data, sidecar and manifest: {remote:?}");

    let credentials = path.join("aws-credentials");
    // `:` instead of `=`: the secret is in the file but cannot be read as one.
    let malformed =
        format!("[default]\naws_access_key_id: caretaker\naws_secret_access_key: {SECRET}\n");
    let unreadable = |p: &std::path::Path| {
        std::fs::remove_file(p).expect("remove");
        std::fs::create_dir(p).expect("a folder where the file was");
    };
    let cases: [Breakage; 3] = [
        (
            "malformed",
            &|p| std::fs::write(p, &malformed).expect("write"),
            "needs aws_access_key_id and aws_secret_access_key",
        ),
        ("unreadable", &unreadable, "cannot read credentials_file"),
        (
            "missing",
            &|p| std::fs::remove_dir(p).expect("remove"),
            "cannot read credentials_file",
        ),
    ];
    for (n, (what, break_it, expected)) in cases.iter().enumerate() {
        break_it(&credentials);
        let (job, log) = backup(path.clone()).await;
        assert_eq!(job["status"], "succeeded", "{what}: {job} {log}");
        assert_eq!(
            job["outcome"]["figures"]["offsite_upload_failed"], 1.0,
            "{what}: {job}"
        );
        assert!(log.contains(expected), "{what}: {log}");
        assert!(!log.contains(SECRET), "{what}: {log}");
        assert!(!job.to_string().contains(SECRET), "{what}: {job}");
        assert_eq!(failures(&path), n as u64 + 1, "{what}");
        assert_eq!(
            local_backups(&path).len(),
            n + 2,
            "{what}: nothing local deleted"
        );
        assert_eq!(
            moto.keys("caretaker-backups", "hosts/db1/"),
            remote,
            "{what}: nothing remote deleted or added"
        );
    }

    let db = [("database", "memory")];
    ct.wait_for(
        "three failures counted",
        std::time::Duration::from_secs(60),
        |s| value(s, "caretaker_offsite_upload_failures_total", &db) == Some(3.0),
    )
    .await;
    assert!(!ct.metrics_text().await.contains(SECRET));
    let page = ct.get("/").await.text().await.expect("landing page");
    assert!(!page.contains(SECRET));
    ct.stop().await;
}

/// Every `[database.backup.offsite]` example of docs/offsite.md loads as
/// written (the stores' settings a user copies must not be refused).
#[test]
fn the_store_examples_in_docs_offsite_md_pass_check_config() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/offsite.md"))
        .expect("docs/offsite.md");
    let examples: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    assert_eq!(examples.len(), 3, "AWS S3, R2 and MinIO");
    for example in examples {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("caretaker.toml");
        std::fs::write(
            &path,
            format!("[[database]]\nname = \"memory\"\npath = \"memory.db\"\n[database.backup]\ndir = \"backups\"\n{example}"),
        )
        .expect("config");
        crate::common::create_db(&dir.path().join("memory.db"));
        let out = crate::common::check_config(&path);
        assert!(
            out.status.success(),
            "{example}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `allow_http = true` is for a store on this host: `check-config` refuses
/// it beside a network address (signatures and answers would cross the
/// network in the clear) and accepts it for a loopback one.
#[test]
fn check_config_refuses_plain_http_to_another_host() {
    let cases = [
        ("http://10.0.0.5:9000", false),
        ("http://minio.example.net:9000", false),
        ("http://127.0.0.1:9000", true),
        ("http://localhost:9000", true),
    ];
    for (endpoint, accepted) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("caretaker.toml");
        std::fs::write(
            &path,
            format!("[[database]]\nname = \"memory\"\npath = \"memory.db\"\n[database.backup]\ndir = \"backups\"\n[database.backup.offsite]\nurl = \"s3://bkt/p\"\nencrypt = false\nendpoint = \"{endpoint}\"\nallow_http = true\n"),
        )
        .expect("config");
        crate::common::create_db(&dir.path().join("memory.db"));
        let out = crate::common::check_config(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), accepted, "{endpoint}: {stderr}");
        if !accepted {
            assert!(stderr.contains("on this host"), "{endpoint}: {stderr}");
            assert!(
                stderr.contains(":9:"),
                "names the endpoint's line: {stderr}"
            );
        }
    }
}
