//! The responder: turns Alertmanager notifications, API calls and schedules
//! into maintenance jobs, and runs them safely.
//!
//! - [`plan`] decides what an alert asks for; [`intake`] records it.
//! - [`state`] is caretaker's own database of jobs and audit events.
//! - [`job`] names the closed sets of a job: status, source, skip reason.
//! - [`queue`] bounds what is waiting; [`executor`] runs one job through
//!   cooldown, breaker and locks; [`decide`] and [`safety`] hold its pure
//!   decisions and rules.

pub mod bounded;
pub mod commit;
pub mod decide;
pub mod executor;
pub mod history;
pub mod intake;
pub mod job;
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

use std::sync::{Arc, RwLock};

use crate::web::auth::Credentials;
use executor::Executor;
use queue::JobQueue;

/// The responder's long-lived parts.
pub struct Responder {
    pub executor: Arc<Executor>,
    pub queue: Arc<JobQueue>,
    /// The bearer tokens in force; replaced whole by a reload that can read them.
    credentials: RwLock<Arc<Credentials>>,
}

impl Responder {
    pub fn new(executor: Arc<Executor>, queue: Arc<JobQueue>) -> Self {
        Self {
            executor,
            queue,
            credentials: RwLock::new(Arc::new(Credentials::default())),
        }
    }

    pub fn credentials(&self) -> Arc<Credentials> {
        self.credentials
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_credentials(&self, credentials: Credentials) {
        *self.credentials.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(credentials);
    }
}
