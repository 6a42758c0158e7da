//! `[[discover]]` with real files: a database created under the glob gets its
//! series within 10 s, loses them within 10 s of going away, and two paths
//! that would share a name are both refused and counted.

use std::time::Duration;

use crate::common::{create_db, value, Caretaker, Sample};

const CONFIG: &str = r#"
[[discover]]
glob = "agents/*/.swarm/memory.db"
name = "{1}"
[discover.backup]
dir = "backups/{1}"
"#;

fn up(m: &[Sample], database: &str) -> Option<f64> {
    value(m, "caretaker_database_up", &[("database", database)])
}

fn create(dir: &std::path::Path, agent: &str) -> std::path::PathBuf {
    let folder = dir.join("agents").join(agent).join(".swarm");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let path = folder.join("memory.db");
    drop(create_db(&path));
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_under_the_glob_appears_and_disappears_with_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    create(dir.path(), "alpha");
    let ct = Caretaker::start(dir, CONFIG).await;
    let m = ct.metrics().await;
    assert_eq!(up(&m, "alpha"), Some(1.0));
    let glob = "agents/*/.swarm/memory.db";
    assert_eq!(
        value(&m, "caretaker_discovered_databases", &[("discover", glob)]),
        Some(1.0)
    );

    let beta = create(ct.dir.path(), "beta");
    ct.wait_for("beta to appear", Duration::from_secs(10), |m| {
        up(m, "beta") == Some(1.0)
    })
    .await;
    std::fs::remove_file(&beta).expect("rm");
    let m = ct
        .wait_for("beta to go", Duration::from_secs(10), |m| {
            up(m, "beta").is_none()
        })
        .await;
    assert_eq!(up(&m, "alpha"), Some(1.0));
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_paths_for_one_name_are_both_refused_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    create(dir.path(), "team a");
    create(dir.path(), "team_a");
    create(dir.path(), "solo");
    let ct = Caretaker::start(dir, CONFIG).await;
    let m = ct.metrics().await;
    let glob = [("discover", "agents/*/.swarm/memory.db")];
    assert_eq!(up(&m, "solo"), Some(1.0));
    assert_eq!(up(&m, "team_a"), None, "never merged");
    assert_eq!(
        value(&m, "caretaker_discovered_databases", &glob),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "caretaker_discovery_errors_total", &glob),
        Some(2.0)
    );
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_database_of_the_same_path_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    create(dir.path(), "alpha");
    let config = format!(
        "[[database]]\nname = \"listed\"\npath = \"agents/alpha/.swarm/memory.db\"\n{CONFIG}"
    );
    let ct = Caretaker::start(dir, &config).await;
    let m = ct.metrics().await;
    assert_eq!(up(&m, "listed"), Some(1.0));
    assert_eq!(up(&m, "alpha"), None);
    let glob = [("discover", "agents/*/.swarm/memory.db")];
    assert_eq!(
        value(&m, "caretaker_discovered_databases", &glob),
        Some(0.0),
        "the glob ran and left the path to its [[database]]"
    );
    assert_eq!(
        value(&m, "caretaker_discovery_errors_total", &glob),
        Some(0.0)
    );
    ct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folder_watch_finds_databases_long_before_the_rescan() {
    // No `agents` folder yet, and a rescan only every hour: what shows
    // within 10 s was found through the watches.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!("[collect]\ndiscover_interval = \"1h\"\n{CONFIG}");
    let ct = Caretaker::start(dir, &config).await;
    let watched = |m: &[Sample]| value(m, "caretaker_discovery_watched_folders", &[]);
    ct.wait_for("the folders to be watched", Duration::from_secs(10), |m| {
        watched(m).is_some_and(|n| n >= 1.0)
    })
    .await;

    let gamma = create(ct.dir.path(), "gamma");
    ct.wait_for("gamma to appear", Duration::from_secs(10), |m| {
        up(m, "gamma") == Some(1.0)
    })
    .await;
    create(ct.dir.path(), "delta");
    let m = ct
        .wait_for("delta to appear", Duration::from_secs(10), |m| {
            up(m, "delta") == Some(1.0)
        })
        .await;
    // agents, agents/{gamma,delta} and their .swarm folders; nothing else.
    assert_eq!(watched(&m), Some(5.0));

    std::fs::remove_file(&gamma).expect("rm");
    let m = ct
        .wait_for("gamma to go", Duration::from_secs(10), |m| {
            up(m, "gamma").is_none()
        })
        .await;
    assert_eq!(up(&m, "delta"), Some(1.0));
    ct.stop().await;
}
