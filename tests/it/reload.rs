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
    ct.wait_for("database b to appear", Duration::from_secs(20), |m| {
        value(m, "caretaker_database_up", &[("database", "b")]) == Some(1.0)
    })
    .await;

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
    })
    .await;
    ct.stop().await;
}
