//! The heartbeat (`[web] heartbeat_url`) against a real HTTP receiver on
//! port 0: requested while all is well, withheld while a database is down,
//! requested again once it is back; its URL never shown or logged.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::common::{caretaker, check_config, create_db, value, Caretaker, Sample};

/// The secret part of the URL: a healthchecks.io check's UUID, say.
pub const SECRET: &str = "5f1e0c2a-heartbeat-secret";

/// A receiver that counts the requests to `/ping/SECRET` and answers 503
/// while `refuse` is set; its base URL.
pub async fn receiver() -> (String, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let (hits, refuse) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (counter, refusing) = (hits.clone(), refuse.clone());
    let app = Router::new().route(
        &format!("/ping/{SECRET}"),
        get(move || {
            let (counter, refusing) = (counter.clone(), refusing.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                if refusing.load(Ordering::SeqCst) {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, hits, refuse)
}

fn withheld(m: &[Sample], reason: &str) -> f64 {
    value(
        m,
        "caretaker_heartbeat_withheld_total",
        &[("reason", reason)],
    )
    .unwrap_or(0.0)
}

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_while_healthy_stop_while_a_database_is_down_and_resume() {
    let (base, hits, refuse) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    drop(create_db(&dir.path().join("memory.db")));
    let config = format!(
        "[web]\nheartbeat_url = \"{base}/ping/{SECRET}\"\nheartbeat_interval = \"50ms\"\n\
         [collect]\ndatabase_interval = \"100ms\"\npatterns_interval = \"100ms\"\n\
         [[database]]\nname = \"memory\"\npath = \"memory.db\"\n"
    );
    let ct = Caretaker::start(dir, &config).await;
    wait_until("three heartbeats", || hits.load(Ordering::SeqCst) >= 3).await;
    let m = ct.metrics().await;
    assert!(
        value(
            &m,
            "caretaker_heartbeat_requests_total",
            &[("result", "success")]
        ) >= Some(1.0)
    );
    assert!(value(
        &m,
        "caretaker_heartbeat_last_success_timestamp_seconds",
        &[]
    )
    .is_some());

    // The database goes away: the heartbeat stops.
    let db = ct.dir.path().join("memory.db");
    let away = ct.dir.path().join("memory.db.away");
    std::fs::rename(&db, &away).expect("move the database away");
    let m = ct
        .wait_for(
            "the heartbeat to be withheld",
            Duration::from_secs(20),
            |m| withheld(m, "database_down") >= 1.0,
        )
        .await;
    assert_eq!(value(&m, "caretaker_database_up", &[]), Some(0.0));
    // The loop waits for each answer before its next tick: every request sent
    // before the first withheld tick has been counted by now.
    let before = hits.load(Ordering::SeqCst);
    let seen = withheld(&m, "database_down");
    ct.wait_for("three more withheld ticks", Duration::from_secs(20), |m| {
        withheld(m, "database_down") >= seen + 3.0
    })
    .await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before,
        "no heartbeat while the database is down"
    );

    // It is back: so is the heartbeat.
    std::fs::rename(&away, &db).expect("bring the database back");
    wait_until("the heartbeat to resume", || {
        hits.load(Ordering::SeqCst) >= before + 2
    })
    .await;

    // A receiver that refuses: counted as failures.
    refuse.store(true, Ordering::SeqCst);
    ct.wait_for("a refused heartbeat", Duration::from_secs(20), |m| {
        value(
            m,
            "caretaker_heartbeat_requests_total",
            &[("result", "failure")],
        ) >= Some(1.0)
    })
    .await;

    // The URL is a credential: not on any page caretaker serves.
    for page in ["/metrics", "/", "/-/ready", "/api/v1/actions"] {
        let body = ct.get(page).await.text().await.expect("body");
        assert!(!body.contains(SECRET), "{page} shows the heartbeat URL");
    }
    ct.stop().await;
}

/// A heartbeat that cannot connect is logged, without its URL, by the binary
/// at debug level (which also lets reqwest and hyper log).
#[test]
fn a_failing_heartbeat_is_logged_without_its_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(create_db(&dir.path().join("memory.db")));
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let config = dir.path().join("caretaker.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\nheartbeat_url = \"http://127.0.0.1:{port}/ping/{SECRET}?key={SECRET}\"\n\
             heartbeat_interval = \"50ms\"\n[[database]]\nname = \"memory\"\npath = \"memory.db\"\n"
        ),
    )
    .expect("write config");
    let checked = check_config(&config);
    assert!(checked.status.success(), "{checked:?}");
    let shown = String::from_utf8_lossy(&checked.stdout) + String::from_utf8_lossy(&checked.stderr);
    assert!(
        !shown.contains(SECRET),
        "check-config shows the URL: {shown}"
    );
    // Nor does the error about a URL it refuses.
    let bad = dir.path().join("bad.toml");
    let text = format!("[web]\nheartbeat_url = \"ftp://host/{SECRET}\"\n");
    std::fs::write(&bad, text).expect("write config");
    let refused = check_config(&bad);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("web.heartbeat_url"),
        "{refused:?}"
    );
    assert!(!said.contains(SECRET), "the error quotes the URL: {said}");
    let mut child = caretaker()
        .args([
            "serve",
            "--web.listen-address=127.0.0.1:0",
            "--log.level=debug",
        ])
        .arg(format!("--config.file={}", config.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut seen, mut failures) = (Vec::new(), 0);
    while failures < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = received.recv_timeout(left) else {
            break;
        };
        if line.contains("heartbeat failed") {
            failures += 1;
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    seen.extend(received.try_iter());
    assert_eq!(failures, 3, "no failed heartbeat logged: {seen:#?}");
    let leaked: Vec<_> = seen.iter().filter(|l| l.contains(SECRET)).collect();
    assert!(leaked.is_empty(), "the URL reached the log: {leaked:#?}");
    assert!(
        seen.iter()
            .any(|l| l.contains("heartbeat failed") && l.contains("error=")),
        "the failure says why"
    );
}
