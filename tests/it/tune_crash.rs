//! `caretaker run tune_patterns` killed with SIGKILL at moments spread over
//! its run: the database is intact and exactly as it was before the run or
//! as an uninterrupted run leaves it, never in between, and the archives a
//! killed run left undo it (or, if it never committed, change nothing).
//!
//! `CARETAKER_CRASH_TRIALS` sets the number of kills (8 by default). The
//! test prints one `RELIABILITY tune-crash ...` line with its figures.

use std::path::Path;
use std::process::Stdio;
use std::time::{Instant, SystemTime};

use caretaker::actions::archive::{list_archives, restore_archives, SweepOptions};
use rusqlite::Connection;

use crate::common::{caretaker, create_db};
use crate::tune_actions::{database, enabled, fill, run, state, unix, CONFIG};

const PATTERNS: u64 = 30_000;

#[test]
fn a_killed_tune_run_leaves_the_database_before_or_after_and_is_undone() {
    let trials: u32 = std::env::var("CARETAKER_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let base_dir = tempfile::tempdir().expect("tempdir");
    let base = base_dir.path().join("base.db");
    let now = unix(SystemTime::now());
    let conn = create_db(&base);
    fill(&conn, now, 99, PATTERNS);
    drop(conn);
    let before = state(&base);

    // The state an uninterrupted run leaves, from the library on a copy.
    let whole = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&base, whole.path().join("memory.db")).expect("copy");
    let db = database(whole.path(), enabled());
    run(&db, SystemTime::now(), false, &SweepOptions::default()).expect("run");
    let after = state(&db.path);
    assert_ne!(after, before);

    // How long the binary takes, to spread the kills over it.
    let timed = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    assert!(spawn(timed.path(), &base).wait().expect("wait").success());
    let duration = started.elapsed();
    assert_eq!(state(&timed.path().join("memory.db")), after);

    let (mut at_before, mut at_after) = (0, 0);
    for i in 0..trials {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = spawn(dir.path(), &base);
        // A kill time, not a synchronisation: spread from the start to the end.
        std::thread::sleep(duration.mul_f64(f64::from(i) / f64::from(trials.max(1))));
        let _ = child.kill();
        child.wait().expect("wait");
        let path = dir.path().join("memory.db");
        let conn = Connection::open(&path).expect("open");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check");
        assert_eq!(check, "ok", "trial {i}");
        drop(conn);
        let now_state = state(&path);
        let archives = list_archives(&dir.path().join("archive/memory")).expect("list");
        if now_state == before {
            at_before += 1;
        } else {
            assert!(
                now_state == after,
                "trial {i}: neither before nor after the run"
            );
            assert!(
                !archives.is_empty(),
                "trial {i}: committed without archives"
            );
            at_after += 1;
        }
        // Either way, the archives it left give back the database before the run.
        if !archives.is_empty() {
            restore_archives(&path, &archives).expect("restore");
        }
        assert_eq!(state(&path), before, "trial {i}: the undo differs");
    }
    println!(
        "RELIABILITY tune-crash patterns={PATTERNS} run_seconds={:.2} trials={trials} before={at_before} after={at_after}",
        duration.as_secs_f64()
    );
}

fn spawn(dir: &Path, base: &Path) -> std::process::Child {
    std::fs::copy(base, dir.join("memory.db")).expect("copy");
    std::fs::write(dir.join("caretaker.toml"), CONFIG).expect("config");
    caretaker()
        .current_dir(dir)
        .args(["run", "tune_patterns", "--config.file=caretaker.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}
