//! The responder: turns Alertmanager notifications, API calls and schedules
//! into maintenance jobs, and runs them safely.
//!
//! - [`submit`] is the way in (notifications, runs by hand, schedules) and
//!   the history's reads; [`plan`] decides what an alert asks for;
//!   [`intake`] turns the decisions into recorded jobs and audit events.
//! - [`state`] is caretaker's own database of jobs and audit events.
//! - [`job`] names the closed sets of a job: status, source, skip reason.
//! - [`queue`] bounds what is waiting; [`executor`] runs one job through
//!   cooldown, breaker and locks; [`decide`] and [`safety`] hold its pure
//!   decisions and rules; [`direct`] records the changes a command makes
//!   itself (migrations, restores) as jobs too.

pub mod bounded;
pub mod commit;
pub mod decide;
pub mod direct;
pub mod executor;
pub mod history;
pub mod intake;
pub mod job;
pub mod lock;
pub mod manual;
pub mod matcher;
pub mod metrics;
pub mod notifier;
pub mod plan;
pub mod published;
pub mod queue;
pub mod safety;
pub mod scheduler;
pub mod state;
pub mod submit;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use executor::Executor;
use queue::JobQueue;

/// The responder's long-lived parts.
pub struct Responder {
    pub executor: Arc<Executor>,
    pub queue: Arc<JobQueue>,
    /// Serialises the rate check and the recording of runs by hand.
    manual_turn: tokio::sync::Mutex<()>,
    /// The port caretaker listens on, for its default `instance` identities
    /// (the bound port: a listener on port 0 or `--web.listen-address` wins
    /// over `web.listen_address`).
    listen_port: AtomicU16,
    /// This host's name, read once.
    host: Option<String>,
}

impl Responder {
    pub fn new(executor: Arc<Executor>, queue: Arc<JobQueue>) -> Self {
        Self {
            executor,
            queue,
            manual_turn: tokio::sync::Mutex::new(()),
            listen_port: AtomicU16::new(0),
            host: sysinfo::System::host_name(),
        }
    }

    /// Records the port caretaker listens on.
    pub fn set_listen_port(&self, port: u16) {
        self.listen_port.store(port, Ordering::Relaxed);
    }

    /// The `instance` label values that name this caretaker under `config`.
    pub fn identities(&self, config: &crate::config::Config) -> Vec<String> {
        let port = match self.listen_port.load(Ordering::Relaxed) {
            0 => config.web.listen_address.port(),
            port => port,
        };
        plan::identities(&config.responder.instance, self.host.as_deref(), port)
    }
}
