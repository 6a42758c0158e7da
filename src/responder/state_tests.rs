//! Tests of the state database: re-queueing and interrupted jobs.
use super::*;

/// A `caretaker run` killed between recording its job and starting it
/// leaves the job queued; the daemon's restart must not run it.
#[test]
fn a_dead_cli_job_is_not_requeued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = StateStore::open(&dir.path().join("state.db"), 1.0).expect("open");
    let job = |key: &str, source| NewJob {
        key: key.into(),
        source,
        action: "prune_patterns".into(),
        database: "memory".into(),
        ..Default::default()
    };
    let recorded = store
        .record(&[job("cli/1", "cli"), job("hook/1", "webhook")], &[], 2.0)
        .expect("record");
    let Recorded::New(webhook) = recorded[1] else {
        panic!("not recorded: {recorded:?}");
    };
    drop(store);
    let (store, _) = StateStore::open(&dir.path().join("state.db"), 3.0).expect("reopen");
    assert_eq!(store.queued().expect("queued"), vec![webhook]);
}

/// Opening the store marks jobs of dead processes interrupted, never the
/// job another live process (a `caretaker run`) is running right now.
#[test]
fn only_jobs_of_dead_processes_become_interrupted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let (store, _) = StateStore::open(&path, 1.0).expect("open");
    let job = |key: &str| NewJob {
        key: key.into(),
        source: "cli",
        action: "vacuum".into(),
        database: "memory".into(),
        ..Default::default()
    };
    let ids: Vec<i64> = store
        .record(&[job("live"), job("dead")], &[], 2.0)
        .expect("record")
        .into_iter()
        .map(|r| match r {
            Recorded::New(id) => id,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut live = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let mut dead = std::process::Command::new("true").spawn().expect("true");
    dead.wait().expect("reaped");
    {
        let conn = store.conn();
        for (id, pid) in [(ids[0], live.id()), (ids[1], dead.id())] {
            conn.execute(
                "UPDATE jobs SET status = 'running', pid = ?2 WHERE id = ?1",
                params![id, pid],
            )
            .expect("running");
        }
    }
    drop(store);
    let (store, interrupted) = StateStore::open(&path, 3.0).expect("reopen");
    assert_eq!(interrupted, 1);
    assert_eq!(
        store.job(ids[0]).expect("job").expect("live").status,
        "running"
    );
    assert_eq!(
        store.job(ids[1]).expect("job").expect("dead").status,
        "interrupted"
    );
    let _ = live.kill();
    let _ = live.wait();
}
