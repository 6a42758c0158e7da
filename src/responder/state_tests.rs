//! Tests of the state database: re-queueing and interrupted jobs.
use rusqlite::params;

use super::*;
use crate::responder::job::{JobSource, JobStatus};

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
        .record(
            &[
                job("cli/1", JobSource::Cli),
                job("hook/1", JobSource::Webhook),
            ],
            &[],
            2.0,
        )
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
        source: JobSource::Cli,
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
        JobStatus::Running
    );
    assert_eq!(
        store.job(ids[1]).expect("job").expect("dead").status,
        JobStatus::Interrupted
    );
    let _ = live.kill();
    let _ = live.wait();
}

/// Several processes (here: connections) opening a new state database at
/// the same moment all get it: none is refused with "database is locked".
#[test]
fn simultaneous_opens_of_a_new_state_database_all_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..40 {
        let path = dir.path().join(format!("{round}/state.db"));
        let barrier = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            let opens: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        StateStore::open(&path, 1.0).map(|_| ())
                    })
                })
                .collect();
            for open in opens {
                let opened = open.join().expect("thread");
                assert!(opened.is_ok(), "round {round}: {opened:?}");
            }
        });
    }
}

/// Jobs claimed at once through two connections (two processes): the
/// decision and the start are one transaction, so only one passes a
/// cooldown that every later one sees.
#[test]
fn of_simultaneous_claims_only_one_passes_a_cooldown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let (one, _) = StateStore::open(&path, 1.0).expect("open");
    let (two, _) = StateStore::open(&path, 1.0).expect("open again");
    let jobs: Vec<NewJob> = (0..10)
        .map(|i| NewJob {
            key: format!("hook/{i}"),
            source: JobSource::Webhook,
            action: "integrity_check".into(),
            database: "memory".into(),
            ..Default::default()
        })
        .collect();
    let ids: Vec<i64> = one
        .record(&jobs, &[], 2.0)
        .expect("record")
        .into_iter()
        .map(|r| match r {
            Recorded::New(id) => id,
            other => panic!("{other:?}"),
        })
        .collect();
    let barrier = std::sync::Barrier::new(ids.len());
    let started = std::thread::scope(|s| {
        let claims: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let (store, barrier) = (if i % 2 == 0 { &one } else { &two }, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    // A cooldown longer than the test: any earlier attempt holds.
                    let hold = |attempts: &[crate::responder::safety::Attempt]| {
                        (!attempts.is_empty()).then_some(())
                    };
                    store.claim(id, "integrity_check", "memory", 3.0, hold)
                })
            })
            .collect();
        claims
            .into_iter()
            .map(|c| c.join().expect("thread").expect("claim"))
            .filter(|c| matches!(c, Claim::Started(_)))
            .count()
    });
    assert_eq!(started, 1);
    let running = one.jobs(&JobFilter {
        status: Some("running".into()),
        limit: 100,
        ..Default::default()
    });
    assert_eq!(running.expect("jobs").len(), 1);
}
