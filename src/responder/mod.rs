//! The responder: turns Alertmanager notifications, API calls and schedules
//! into maintenance jobs, and runs them safely.
//!
//! - [`plan`] decides what an alert asks for; [`intake`] records it.
//! - [`state`] is caretaker's own database of jobs and audit events.
//! - [`queue`] bounds what is waiting; [`executor`] runs one job through
//!   cooldown, breaker and locks; [`safety`] holds the pure rules.

pub mod commit;
pub mod executor;
pub mod intake;
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

use crate::config::Config;
use crate::web::auth::{load_token, Token};
use executor::Executor;
use queue::JobQueue;

/// The responder's long-lived parts.
pub struct Responder {
    pub executor: Arc<Executor>,
    pub queue: Arc<JobQueue>,
    token: RwLock<Option<Token>>,
}

impl Responder {
    pub fn new(executor: Arc<Executor>, queue: Arc<JobQueue>) -> Self {
        Self {
            executor,
            queue,
            token: RwLock::new(None),
        }
    }

    pub fn token(&self) -> Option<Token> {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// (Re)reads the token file of `config`; without one, POST endpoints stay closed.
    pub fn load_token(&self, config: &Config) {
        let token = match &config.web.token_file {
            Some(path) => match load_token(path) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::error!(error = %e, "no usable token: POST endpoints answer 403");
                    None
                }
            },
            None => {
                tracing::info!("no web.token_file configured: POST endpoints answer 403");
                None
            }
        };
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = token;
    }
}
