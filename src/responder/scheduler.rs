//! `[[schedule]]`: the runbooks' cron jobs (daily backup and purge at 02:00,
//! weekly vacuum, analyze and prune) as jobs of the same engine, with the same
//! breaker, locks, windows and audit as alert-driven ones.
//!
//! Each firing is keyed by (schedule, action, database, fire time), so a
//! firing is recorded once even if two caretaker processes share a state
//! database. Firings missed while caretaker was stopped are not replayed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::responder::job::JobSource;
use crate::responder::state::NewJob;

/// The fire times of `schedule` after `from`, up to and including `to`.
pub fn due(
    schedule: &cron::Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    schedule
        .after(&from)
        .take_while(|t| *t <= to)
        .take(1000)
        .collect()
}

/// The jobs every schedule of `config` asks for in (from, to].
pub fn jobs_due(config: &Config, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<NewJob> {
    let mut jobs = Vec::new();
    for s in &config.schedules {
        let databases: Vec<String> = match &s.database {
            Some(db) => vec![db.clone()],
            None => config.databases.iter().map(|d| d.name.clone()).collect(),
        };
        for at in due(&s.schedule, from, to) {
            for database in &databases {
                for action in &s.actions {
                    jobs.push(NewJob {
                        key: format!(
                            "schedule/{}/{action}/{database}/{}",
                            s.name,
                            at.to_rfc3339()
                        ),
                        source: JobSource::Schedule,
                        rule: Some(format!("schedule:{}", s.name)),
                        action: action.clone(),
                        database: database.clone(),
                        dry_run: s.dry_run,
                        ..Default::default()
                    });
                }
            }
        }
    }
    jobs
}

/// When the next schedule fires after `from` (None without schedules).
pub fn next_fire(config: &Config, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    config
        .schedules
        .iter()
        .filter_map(|s| s.schedule.after(&from).next())
        .min()
}

/// Longest sleep between looks at the (reloadable) configuration.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Records and queues due jobs until cancelled.
pub async fn run<F, Fut>(config: impl Fn() -> Arc<Config>, submit: F, cancel: CancellationToken)
where
    F: Fn(Vec<NewJob>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut last = Utc::now();
    loop {
        let wait = next_fire(&config(), last)
            .and_then(|t| (t - Utc::now()).to_std().ok())
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
        }
        let now = Utc::now();
        let jobs = jobs_due(&config(), last, now);
        last = now;
        if !jobs.is_empty() {
            submit(jobs).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn crontab_fields_fire_at_their_times_for_every_database() {
        let text = r#"
[[database]]
name = "a"
path = "a.db"
[[database]]
name = "b"
path = "b.db"
[[schedule]]
name = "nightly"
cron = "0 2 * * *"
actions = ["backup", "purge_expired"]
[[schedule]]
name = "weekly"
cron = "0 3 * * Sun"
actions = ["vacuum"]
database = "a"
"#;
        let config = Config::parse(Path::new("/c.toml"), text).expect("config");
        let jobs = jobs_due(
            &config,
            at("2026-11-21T02:00:00Z"),
            at("2026-11-23T02:00:00Z"),
        );
        // (from, to]: the 22nd and 23rd at 02:00, not the 21st; x two databases x two actions; one Sunday vacuum.
        assert_eq!(jobs.len(), 9, "{jobs:?}");
        assert_eq!(jobs.iter().filter(|j| j.action == "vacuum").count(), 1);
        assert!(jobs.iter().all(|j| j.source == JobSource::Schedule));
        let keys: std::collections::BTreeSet<_> = jobs.iter().map(|j| j.key.clone()).collect();
        assert_eq!(keys.len(), jobs.len(), "every firing has its own key");
        assert!(jobs_due(
            &config,
            at("2026-11-23T02:00:00Z"),
            at("2026-11-23T03:00:00Z")
        )
        .is_empty());
        assert_eq!(
            next_fire(&config, at("2026-11-23T02:00:00Z")),
            Some(at("2026-11-24T02:00:00Z"))
        );
    }

    #[test]
    fn bad_expressions_are_config_errors() {
        let text = "[[database]]\nname = \"a\"\npath = \"a.db\"\n[[schedule]]\nname = \"x\"\ncron = \"every day\"\nactions = [\"backup\"]\n";
        let errors = Config::parse(Path::new("/c.toml"), text).expect_err("invalid");
        assert_eq!(errors.0[0].line, Some(6), "{errors}");
    }
}
