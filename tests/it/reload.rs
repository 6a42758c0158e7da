//! Reloading: a valid file replaces the running configuration, an invalid one
//! is refused and the old configuration keeps running.

use std::time::Duration;

use crate::common::{create_db, value, Caretaker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_reloaded_and_an_invalid_one_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_db(&dir.path().join("a.db"));
    create_db(&dir.path().join("b.db"));
    let one = "[[database]]\nname = \"a\"\npath = \"a.db\"\n";
    let ct = Caretaker::start(dir, one).await;
    let m = ct.metrics().await;
    assert_eq!(
        value(&m, "caretaker_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert!(value(&m, "caretaker_database_up", &[("database", "b")]).is_none());

    let two = format!("{one}[[database]]\nname = \"b\"\npath = \"b.db\"\n");
    std::fs::write(&ct.config_path, two).expect("rewrite");
    let m = ct
        .wait_for("database b to appear", Duration::from_secs(20), |m| {
            value(m, "caretaker_database_up", &[("database", "b")]) == Some(1.0)
        })
        .await;
    let runs = |m: &[crate::common::Sample]| {
        value(
            m,
            "caretaker_action_runs_total",
            &[
                ("database", "b"),
                ("action", "vacuum"),
                ("result", "failure"),
            ],
        )
    };
    assert_eq!(runs(&m), Some(0.0), "the responder's series of b, at 0");

    std::fs::write(
        &ct.config_path,
        "[[database]]\nname = \"a\"\npath = \"a.db\"\nbogus = 1\n",
    )
    .expect("rewrite");
    let m = ct
        .wait_for("the reload to be refused", Duration::from_secs(20), |m| {
            value(m, "caretaker_config_last_reload_successful", &[]) == Some(0.0)
        })
        .await;
    assert_eq!(
        value(&m, "caretaker_database_up", &[("database", "b")]),
        Some(1.0),
        "the old configuration keeps running"
    );

    std::fs::write(&ct.config_path, one).expect("rewrite");
    ct.wait_for("database b to go away", Duration::from_secs(20), |m| {
        value(m, "caretaker_config_last_reload_successful", &[]) == Some(1.0)
            && value(m, "caretaker_database_up", &[("database", "b")]).is_none()
            && value(m, "caretaker_collector_success", &[("database", "b")]).is_none()
            && runs(m).is_none()
    })
    .await;
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_binary() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    create_db(&dir.path().join("a.db"));
    create_db(&dir.path().join("b.db"));
    let config = dir.path().join("caretaker.toml");
    let one = format!(
        "[[database]]\nname = \"a\"\npath = \"{}\"\n",
        dir.path().join("a.db").display()
    );
    std::fs::write(&config, &one).expect("config");
    // A second name for the same file, in another folder: writing through it
    // changes the configuration without an event in the watched folder, so
    // only SIGHUP can make caretaker notice.
    let other = tempfile::tempdir().expect("tempdir");
    let alias = other.path().join("alias.toml");
    std::fs::hard_link(&config, &alias).expect("hard link");
    let port = crate::prometheus::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_caretaker"))
        .arg("serve")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let server = crate::prometheus::Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let metrics = || async {
        let text = client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(crate::common::parse(&text))
    };
    crate::prometheus::poll(
        "caretaker to serve database a",
        Duration::from_secs(20),
        || async {
            let m = metrics().await?;
            (value(&m, "caretaker_database_up", &[("database", "a")]) == Some(1.0)).then_some(())
        },
    )
    .await;
    let two = format!(
        "{one}[[database]]\nname = \"b\"\npath = \"{}\"\n",
        dir.path().join("b.db").display()
    );
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&alias)
            .expect("open alias");
        f.write_all(two.as_bytes()).expect("write");
    }
    assert_eq!(std::fs::read_to_string(&config).expect("read"), two);
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(server.child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    crate::prometheus::poll(
        "database b after SIGHUP",
        Duration::from_secs(20),
        || async {
            let m = metrics().await?;
            (value(&m, "caretaker_database_up", &[("database", "b")]) == Some(1.0)).then_some(())
        },
    )
    .await;
}

/// A reload keeps the collectors (their last passes) and schedules of the
/// databases whose configuration it leaves alone: adding one database checks
/// that one, not every database again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_adds_a_database_leaves_the_others_schedules_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_db(&dir.path().join("a.db"));
    create_db(&dir.path().join("b.db"));
    let one =
        "[collect]\nintegrity_interval = \"1h\"\n[[database]]\nname = \"a\"\npath = \"a.db\"\n";
    let ct = Caretaker::start(dir, one).await;
    let checked = |m: &[crate::common::Sample], db: &str| {
        value(
            m,
            "caretaker_database_integrity_check_timestamp_seconds",
            &[("database", db)],
        )
    };
    let m = ct
        .wait_for("a's integrity check", Duration::from_secs(20), |m| {
            checked(m, "a").is_some()
        })
        .await;
    let before = checked(&m, "a");

    let two = format!("{one}[[database]]\nname = \"b\"\npath = \"b.db\"\n");
    std::fs::write(&ct.config_path, two).expect("rewrite");
    let m = ct
        .wait_for("b's integrity check", Duration::from_secs(20), |m| {
            checked(m, "b").is_some()
        })
        .await;
    assert_eq!(checked(&m, "a"), before, "a was not checked again");
    ct.stop().await;
}
