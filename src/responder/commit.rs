//! Group commit for the state database.
//!
//! Every accepted alert is fsynced before its 202 (synchronous=FULL), and an
//! fsync costs about a millisecond here. Requests that arrive while one
//! commit is being written wait for the next, which carries all of them in a
//! single transaction: one fsync for a burst instead of one per request, with
//! the same durability for each.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::state::{insert_audit, insert_jobs, AuditEvent, NewJob, Recorded};

/// Requests written in one transaction at most.
const MAX_BATCH: usize = 256;

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

fn writer(conn: &Mutex<Connection>, requests: &Receiver<Pending>) {
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
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
    }
}

#[cfg(test)]
mod tests {
    use crate::responder::state::{NewJob, Recorded, StateStore};

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
                                source: "webhook",
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
