//! Retention of caretaker's own history: jobs and audit events older than
//! `responder.history_retention` are deleted at startup and every hour, so
//! the state database does not grow without bound.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::unix_seconds;
use crate::responder::state::StateStore;

/// How often old history is deleted.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes history older than `retention` before `now`.
pub async fn prune_once(store: Arc<StateStore>, retention: Duration, now: SystemTime) {
    let before = unix_seconds(now) - retention.as_secs_f64();
    match tokio::task::spawn_blocking(move || store.prune_history(before)).await {
        Ok(Ok((0, 0))) => {}
        Ok(Ok((jobs, events))) => {
            tracing::info!(
                jobs,
                events,
                "deleted history older than responder.history_retention"
            )
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot delete old history"),
        Err(e) => tracing::warn!(error = %e, "history retention task failed"),
    }
}

/// Prunes now and every [`PRUNE_EVERY`] with the current configuration's
/// retention, until cancelled.
pub async fn run(
    store: Arc<StateStore>,
    config: impl Fn() -> Arc<Config>,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                let retention = config().responder.history_retention;
                prune_once(store.clone(), retention, SystemTime::now()).await;
            }
        }
    }
}
