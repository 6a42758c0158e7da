//! Group commit for the state database.
//!
//! Every accepted alert is fsynced before its 202 (synchronous=FULL), and an
//! fsync costs a few hundred microseconds here, more when the disk is busy.
//! Requests that arrive while one commit is being written wait for the next,
//! which carries all of them in a single transaction: one fsync for a burst
//! instead of one per request, with the same durability for each. Under
//! steady concurrent load a commit also waits briefly for the senders it just
//! answered ([`wait_for`]), so they do not settle into two half-full commits
//! taking turns.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::state::{insert_audit, insert_jobs, AuditEvent, NewJob, Recorded};

/// Requests written in one transaction at most.
const MAX_BATCH: usize = 256;

/// The longest a commit waits for the senders of the previous one.
const MAX_WAIT: Duration = Duration::from_micros(500);

type Answer = rusqlite::Result<Vec<Recorded>>;

struct Pending {
    jobs: Vec<NewJob>,
    events: Vec<AuditEvent>,
    now: f64,
    reply: Reply,
}

/// How the writer answers: a blocking caller waits on a channel; a request
/// handler awaits a oneshot, so the common webhook path never leaves the
/// async runtime for a blocking thread.
enum Reply {
    Blocking(SyncSender<Answer>),
    Async(tokio::sync::oneshot::Sender<Answer>),
}

impl Reply {
    fn send(self, answer: Answer) {
        // A caller that gave up (client gone) does not matter to the others.
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(answer);
            }
            Reply::Async(tx) => {
                let _ = tx.send(answer);
            }
        }
    }
}

fn stopped() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
        Some("the state writer has stopped".into()),
    )
}

/// The handle callers record through; the writer thread ends when it drops.
pub struct GroupCommit {
    queue: Sender<Pending>,
}

impl GroupCommit {
    /// Starts the writer thread on `conn`.
    pub fn start(conn: Arc<Mutex<Connection>>) -> std::io::Result<GroupCommit> {
        let (queue, requests) = mpsc::channel();
        std::thread::Builder::new()
            .name("caretaker-state-writer".into())
            .spawn(move || writer(&conn, &requests))?;
        Ok(GroupCommit { queue })
    }

    /// Records jobs and events durably; returns once they are committed.
    pub fn record(&self, jobs: &[NewJob], events: &[AuditEvent], now: f64) -> Answer {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(jobs.to_vec(), events.to_vec(), now, Reply::Blocking(reply))?;
        answer.recv().map_err(|_| stopped())?
    }

    /// [`Self::record`] for async callers: awaits the commit without
    /// occupying a thread.
    pub async fn record_async(
        &self,
        jobs: Vec<NewJob>,
        events: Vec<AuditEvent>,
        now: f64,
    ) -> Answer {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(jobs, events, now, Reply::Async(reply))?;
        answer.await.map_err(|_| stopped())?
    }

    fn submit(
        &self,
        jobs: Vec<NewJob>,
        events: Vec<AuditEvent>,
        now: f64,
        reply: Reply,
    ) -> rusqlite::Result<()> {
        let pending = Pending {
            jobs,
            events,
            now,
            reply,
        };
        self.queue.send(pending).map_err(|_| stopped())
    }
}

fn write_one(conn: &mut Connection, p: &Pending) -> rusqlite::Result<Vec<Recorded>> {
    let tx = conn.transaction()?;
    let out = insert_jobs(&tx, &p.jobs, p.now)?;
    for e in &p.events {
        insert_audit(&tx, e)?;
    }
    tx.commit()?;
    Ok(out)
}

fn write_batch(conn: &mut Connection, batch: &[Pending]) -> rusqlite::Result<Vec<Vec<Recorded>>> {
    let tx = conn.transaction()?;
    let mut outs = Vec::with_capacity(batch.len());
    for p in batch {
        outs.push(insert_jobs(&tx, &p.jobs, p.now)?);
        for e in &p.events {
            insert_audit(&tx, e)?;
        }
    }
    tx.commit()?;
    Ok(outs)
}

/// What the writer knows from its previous commit.
#[derive(Default)]
struct Previous {
    /// Requests it answered.
    answered: usize,
    /// How long it took.
    took: Duration,
}

/// How many requests a commit should hold, and how long it may wait for
/// them, given the `queued` requests it found and its previous commit; `None`
/// to commit at once.
///
/// Under steady load the senders a commit answers send again within a round
/// trip, and those already queued are some of them. So while fewer are
/// queued than the previous commit answered, the commit waits for the rest,
/// for at most half the previous commit's time (capped by [`MAX_WAIT`]): one
/// fsync for the whole group instead of two half-full commits taking turns.
/// A lone sender (a previous commit of one) and the first commit after a
/// pause never wait.
fn wait_for(queued: usize, previous: &Previous) -> Option<(usize, Duration)> {
    if queued >= previous.answered {
        return None;
    }
    let target = previous.answered.min(MAX_BATCH);
    Some((target, (previous.took / 2).min(MAX_WAIT)))
}

/// Gathers one commit's requests: all that are queued, then (see
/// [`wait_for`]) those expected back within a bounded wait.
fn gather(first: Pending, requests: &Receiver<Pending>, previous: &Previous) -> Vec<Pending> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match requests.try_recv() {
            Ok(p) => batch.push(p),
            Err(_) => break,
        }
    }
    let Some((target, wait)) = wait_for(batch.len(), previous) else {
        return batch;
    };
    let deadline = Instant::now() + wait;
    while batch.len() < target {
        let left = deadline.saturating_duration_since(Instant::now());
        match requests.recv_timeout(left) {
            Ok(p) => batch.push(p),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    batch
}

fn writer(conn: &Mutex<Connection>, requests: &Receiver<Pending>) {
    let mut previous = Previous::default();
    loop {
        let idle = Instant::now();
        let Ok(first) = requests.recv() else { break };
        // After a pause the previous commit's senders are not coming back.
        if idle.elapsed() > MAX_WAIT {
            previous = Previous::default();
        }
        let batch = gather(first, requests, &previous);
        let started = Instant::now();
        let answered = batch.len();
        let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        match write_batch(&mut conn, &batch) {
            Ok(outs) => {
                for (p, out) in batch.into_iter().zip(outs) {
                    p.reply.send(Ok(out));
                }
            }
            // One failing request must not fail the others: write each alone.
            Err(_) => {
                for p in batch {
                    let out = write_one(&mut conn, &p);
                    p.reply.send(out);
                }
            }
        }
        previous = Previous {
            answered,
            took: started.elapsed(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responder::state::{NewJob, Recorded, StateStore};

    fn pending() -> Pending {
        let (reply, _) = mpsc::sync_channel(1);
        Pending {
            jobs: Vec::new(),
            events: Vec::new(),
            now: 0.0,
            reply: Reply::Blocking(reply),
        }
    }

    fn previous(answered: usize, took_us: u64) -> Previous {
        Previous {
            answered,
            took: Duration::from_micros(took_us),
        }
    }

    #[test]
    fn a_commit_waits_only_for_senders_it_can_expect_back() {
        // A lone sender (its previous commit held one request) never waits,
        // nor does the first commit after start or after a pause.
        assert_eq!(wait_for(1, &previous(1, 300)), None);
        assert_eq!(wait_for(1, &Previous::default()), None);
        assert_eq!(wait_for(2, &Previous::default()), None);
        // Four senders answered, two already back: wait for the other two
        // (not for four more: the queued ones are among those answered).
        let half = Duration::from_micros(150);
        assert_eq!(wait_for(2, &previous(4, 300)), Some((4, half)));
        // Only one back yet: still wait for all four.
        assert_eq!(wait_for(1, &previous(4, 300)), Some((4, half)));
        // As many queued as were answered, or more (new senders): no wait.
        assert_eq!(wait_for(4, &previous(4, 300)), None);
        assert_eq!(wait_for(6, &previous(4, 300)), None);
        // The wait is half the previous commit, never more than MAX_WAIT.
        assert_eq!(wait_for(2, &previous(4, 60_000_000)), Some((4, MAX_WAIT)));
        // The target never passes MAX_BATCH.
        assert_eq!(
            wait_for(MAX_BATCH - 1, &previous(2 * MAX_BATCH, 300)),
            Some((MAX_BATCH, half))
        );
    }

    #[test]
    fn gather_takes_what_is_queued_and_ends_its_wait_with_what_came() {
        let (tx, rx) = mpsc::channel();
        let busy = previous(3, 3_600_000_000);
        // Nine queued: all taken at once, no wait (more than were answered).
        for _ in 0..9 {
            tx.send(pending()).expect("send");
        }
        assert_eq!(gather(pending(), &rx, &busy).len(), 10);
        // Two queued, three expected back: the wait is bounded (MAX_WAIT,
        // not half the previous commit's hour) and ends with what came.
        tx.send(pending()).expect("send");
        assert_eq!(gather(pending(), &rx, &busy).len(), 2);
        // The first commit after start takes what is queued.
        tx.send(pending()).expect("send");
        assert_eq!(gather(pending(), &rx, &Previous::default()).len(), 2);
    }

    #[test]
    fn concurrent_records_are_all_committed_and_keys_stay_unique() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let (store, _) = StateStore::open(&path, 1.0).expect("open");
        let store = std::sync::Arc::new(store);
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|i| {
                            // Half the keys are shared between threads: one of them wins each.
                            let key = if i % 2 == 0 {
                                format!("shared-{i}")
                            } else {
                                format!("own-{t}-{i}")
                            };
                            let job = NewJob {
                                key,
                                source: crate::responder::job::JobSource::Webhook,
                                action: "analyze".into(),
                                database: "memory".into(),
                                ..Default::default()
                            };
                            store.record(&[job], &[], 2.0).expect("recorded")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results: Vec<Vec<Recorded>> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect();
        let new = results
            .iter()
            .flatten()
            .filter(|r| matches!(r, Recorded::New(_)))
            .count();
        let duplicates = results
            .iter()
            .flatten()
            .filter(|r| matches!(r, Recorded::Duplicate(..)))
            .count();
        assert_eq!(new, 25 + 16 * 25, "each shared key once, every own key");
        assert_eq!(new + duplicates, 16 * 50);
        drop(store);
        let conn = rusqlite::Connection::open(&path).expect("reopen");
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows as usize, new, "what was acknowledged is on disk");
    }
}
