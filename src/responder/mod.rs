//! The responder: turns Alertmanager notifications, API calls and schedules
//! into maintenance jobs, and runs them safely.

pub mod matcher;
pub mod plan;
pub mod safety;
pub mod state;
