//! The snapshot loop: every `incremental_interval`, one incremental snapshot
//! of each database that asks for them (see [`crate::backups::chain`]).
//!
//! Snapshots are not jobs: one a minute per database would bury the job
//! history and the audit. They take the same two locks as a backup job (this
//! process's turn at the database, then the lock file that other caretaker
//! processes respect), so a snapshot never overlaps a backup, a vacuum or a
//! restore run by `caretaker run`. When no chain can take a delta (none yet,
//! its full backup is older than `full_interval`, a broken link), the loop
//! records a `backup` job like a schedule would, with the same cooldown,
//! breaker and audit, and the next snapshot starts a chain on that backup.
//! Databases take turns within the loop; the figures each snapshot leaves
//! are published at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::Runtime;
use crate::backups::chain::chains;
use crate::backups::chain::take::{take_snapshot, SnapshotError, Taken};
use crate::backups::listing::{database_backups_cached, ChecksumCache};
use crate::config::DatabaseConfig;
use crate::metrics::{unix_seconds, MetricSet, SourceKey};
use crate::responder::job::JobSource;
use crate::responder::lock::lock_file;
use crate::responder::state::NewJob;

/// How often the loop looks at the (reloadable) configuration when no
/// snapshot is due sooner.
const IDLE: Duration = Duration::from_secs(1);

/// How soon the loop looks again after asking for a full backup, when the
/// interval is longer.
const CHAIN_START_POLL: Duration = Duration::from_secs(2);

/// A full backup asked for is not asked for again sooner than this: it may
/// still be queued or running.
const ASK_AGAIN: Duration = Duration::from_secs(300);

/// One database's running figures.
#[derive(Default)]
struct Figures {
    due: Option<Instant>,
    cache: ChecksumCache,
    bytes_total: u64,
    deltas_total: u64,
    failures_total: u64,
    last_seconds: f64,
    asked_full: Option<Instant>,
    /// The recovery point and the newest chain's length, as last found.
    point: Option<(SystemTime, usize)>,
}

/// Takes snapshots until `cancel` fires.
pub(super) async fn run(runtime: Arc<Runtime>, cancel: CancellationToken) {
    let mut figures: HashMap<String, Figures> = HashMap::new();
    loop {
        let config = runtime.config();
        let wanted: Vec<&DatabaseConfig> = config
            .databases
            .iter()
            .filter(|d| {
                d.backup
                    .as_ref()
                    .is_some_and(|b| b.incremental_interval.is_some())
            })
            .collect();
        figures.retain(|name, _| wanted.iter().any(|d| &d.name == name));
        let mut sleep = IDLE;
        for db in wanted {
            let Some(interval) = db.backup.as_ref().and_then(|b| b.incremental_interval) else {
                continue;
            };
            let mut f = figures.remove(&db.name).unwrap_or_default();
            let now = Instant::now();
            if f.due.is_none_or(|due| due <= now) {
                f.due = Some(now + interval);
                f = snapshot(&runtime, db, f).await;
            }
            if let Some(due) = f.due {
                sleep = sleep.min(due.saturating_duration_since(Instant::now()));
            }
            figures.insert(db.name.clone(), f);
            if cancel.is_cancelled() {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(sleep.max(Duration::from_millis(10))) => {}
            () = cancel.cancelled() => return,
        }
    }
}

/// One snapshot of `db` under its locks, its figures published.
async fn snapshot(runtime: &Runtime, db: &DatabaseConfig, mut f: Figures) -> Figures {
    let lock = runtime.responder.executor.database_lock(&db.name);
    let _turn = lock.lock().await;
    let started = Instant::now();
    let job_db = db.clone();
    let mut cache = std::mem::take(&mut f.cache);
    let result = tokio::task::spawn_blocking(move || {
        let result = (|| {
            let cfg = job_db.backup.as_ref().ok_or_else(|| {
                SnapshotError::Io(std::io::Error::other("no backup folder configured"))
            })?;
            // Another process's maintenance of this database: this turn is skipped.
            let _file_lock = lock_file(&job_db.path, Duration::ZERO)
                .map_err(|e| SnapshotError::Io(std::io::Error::other(e.to_string())))?;
            let deadline = Instant::now() + cfg.timeout;
            let taken = take_snapshot(&job_db, cfg, SystemTime::now(), deadline, &mut cache);
            if matches!(taken, Ok(Taken::Delta { .. })) {
                crate::backups::offsite::links::upload_after_snapshot(&job_db.name, cfg, deadline);
            }
            let point = recovery_point(&job_db, deadline, &mut cache);
            Ok::<_, SnapshotError>((taken?, point))
        })();
        (result, cache)
    })
    .await;
    f.last_seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((Ok((taken, point)), cache)) => {
            f.cache = cache;
            f.point = point.or(f.point);
            match taken {
                Taken::Delta { bytes, .. } => {
                    f.bytes_total += bytes;
                    f.deltas_total += 1;
                }
                Taken::Unchanged => {}
                Taken::NeedsFullBackup(why) => {
                    ask_for_full_backup(runtime, db, why, &mut f).await;
                    // Look again soon: the chain starts once the backup is there.
                    let soon = Instant::now() + CHAIN_START_POLL;
                    f.due = f.due.map(|d| d.min(soon));
                }
            }
        }
        Ok((Err(e), cache)) => {
            f.cache = cache;
            f.failures_total += 1;
            tracing::warn!(database = %db.name, error = %e, "incremental snapshot failed");
        }
        Err(e) => {
            f.failures_total += 1;
            tracing::error!(database = %db.name, error = %e, "incremental snapshot task failed");
        }
    }
    publish(runtime, db, &f);
    f
}

/// The newest moment any chain can restore, and the newest chain's length.
fn recovery_point(
    db: &DatabaseConfig,
    deadline: Instant,
    cache: &mut ChecksumCache,
) -> Option<(SystemTime, usize)> {
    let cfg = db.backup.as_ref()?;
    let mut backups = database_backups_cached(&cfg.dir, &db.name, deadline, cache).ok()?;
    // Newest first: the newest chain, and the one before it (which may have
    // taken a link after the newest full backup), are all that can hold the
    // newest moment; older chains are not read every interval.
    backups.retain(|b| b.verified);
    backups.truncate(2);
    let newest = chains(backups).ok()?;
    let point = newest.iter().map(|c| c.newest_point()).max()?;
    let length = newest.first().map_or(0, |c| c.links.len());
    Some((point, length))
}

async fn ask_for_full_backup(runtime: &Runtime, db: &DatabaseConfig, why: &str, f: &mut Figures) {
    if f.asked_full.is_some_and(|at| at.elapsed() < ASK_AGAIN) {
        return;
    }
    f.asked_full = Some(Instant::now());
    tracing::info!(database = %db.name, reason = why, "a full backup starts a new chain");
    let stamp = crate::backups::chain::format::stamp(SystemTime::now());
    let job = NewJob {
        key: format!("incremental/backup/{}/{stamp}", db.name),
        source: JobSource::Schedule,
        rule: Some("incremental".into()),
        action: "backup".into(),
        database: db.name.clone(),
        ..Default::default()
    };
    runtime.responder.submit(vec![job]).await;
}

fn publish(runtime: &Runtime, db: &DatabaseConfig, f: &Figures) {
    let (point, chain_length) = f.point.unzip();
    let mut set = MetricSet::new();
    if let Some(interval) = db.backup.as_ref().and_then(|b| b.incremental_interval) {
        set.gauge(
            "caretaker_backup_incremental_interval_seconds",
            "Configured interval between incremental snapshots",
            vec![],
            interval.as_secs_f64(),
        );
    }
    if let Some(point) = point {
        set.gauge(
            "caretaker_backup_recovery_point_timestamp_seconds",
            "The newest moment restore --at can rebuild (a full backup and its deltas)",
            vec![],
            unix_seconds(point),
        );
    }
    if let Some(length) = chain_length {
        set.gauge(
            "caretaker_backup_chain_length",
            "Deltas in the newest chain",
            vec![],
            length as f64,
        );
    }
    set.counter(
        "caretaker_backup_incremental_bytes",
        "Bytes of deltas written by incremental snapshots since caretaker started",
        vec![],
        f.bytes_total as f64,
    );
    set.counter(
        "caretaker_backup_incremental_deltas",
        "Deltas written by incremental snapshots since caretaker started",
        vec![],
        f.deltas_total as f64,
    );
    set.counter(
        "caretaker_backup_incremental_failures",
        "Incremental snapshots that failed since caretaker started",
        vec![],
        f.failures_total as f64,
    );
    set.gauge(
        "caretaker_backup_incremental_last_duration_seconds",
        "How long the last incremental snapshot took",
        vec![],
        f.last_seconds,
    );
    set.prefix_label("database", &db.name);
    runtime
        .snapshot
        .publish(SourceKey::new("incremental", Some(&db.name)), set);
}
