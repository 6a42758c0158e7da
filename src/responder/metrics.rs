//! The responder's own metrics: requests, alerts, runs, skips, breakers and
//! remediation outcomes. Registered once; label values are closed sets or
//! configured names (actions, databases), never alert text.
//!
//! Every change goes through [`ResponderMetrics::touch`], which counts it, so
//! a scrape can tell that nothing changed without encoding these families
//! again: with the series created at 0 for every action and database they
//! were most of a small scrape's work, and at a fleet's size thousands of
//! lines per scrape.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::actions::kind::ActionKind;
use crate::config::{Config, Detail};
use crate::responder::decide::RunResult;
use crate::responder::job::SkipReason;
use crate::responder::safety::{breaker_open_failures, Limits};
use crate::responder::state::StateStore;

type Labels = Vec<(&'static str, String)>;

fn duration_buckets() -> Histogram {
    Histogram::new([
        0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
    ])
}

fn resolve_buckets() -> Histogram {
    Histogram::new([
        30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
    ])
}

/// The responder's families, reached through [`ResponderMetrics::touch`].
#[derive(Debug)]
pub struct Families {
    pub webhook_requests: Family<Labels, Counter>,
    pub alerts_received: Family<Labels, Counter>,
    pub alerts_ignored: Family<Labels, Counter>,
    pub auth_failures: Family<Labels, Counter>,
    pub action_runs: Family<Labels, Counter>,
    pub action_skipped: Family<Labels, Counter>,
    pub action_duration: Family<Labels, Histogram, fn() -> Histogram>,
    pub action_last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    pub breaker_open: Family<Labels, Gauge>,
    pub queue_depth: Gauge,
    pub remediation_resolved: Family<Labels, Counter>,
    pub remediation_unresolved: Family<Labels, Counter>,
    pub time_to_resolve: Histogram,
}

#[derive(Debug)]
pub struct ResponderMetrics {
    families: Families,
    /// Changes so far (each counted once its [`Touch`] is dropped).
    changes: AtomicU64,
    /// The databases and actions of the last [`ResponderMetrics::initialize`].
    known: Mutex<(BTreeSet<String>, BTreeSet<String>)>,
}

/// A change to the families in progress: counted when it is dropped, after
/// the change, so a scrape that sees the new count sees the change.
pub struct Touch<'a> {
    metrics: &'a ResponderMetrics,
}

impl Deref for Touch<'_> {
    type Target = Families;

    fn deref(&self) -> &Families {
        &self.metrics.families
    }
}

impl Drop for Touch<'_> {
    fn drop(&mut self) {
        self.metrics.changes.fetch_add(1, Ordering::Release);
    }
}

impl ResponderMetrics {
    /// The families, to change (or read, in tests): the change is counted.
    pub fn touch(&self) -> Touch<'_> {
        Touch { metrics: self }
    }

    /// How many changes there have been: equal counts, equal families.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Creates the metrics and registers them in `registry`, which then must
    /// hold nothing else that changes (see [`ResponderMetrics::changes`]).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Families {
            webhook_requests: Family::default(),
            alerts_received: Family::default(),
            alerts_ignored: Family::default(),
            auth_failures: Family::default(),
            action_runs: Family::default(),
            action_skipped: Family::default(),
            action_duration: Family::new_with_constructor(duration_buckets),
            action_last_success: Family::default(),
            breaker_open: Family::default(),
            queue_depth: Gauge::default(),
            remediation_resolved: Family::default(),
            remediation_unresolved: Family::default(),
            time_to_resolve: resolve_buckets(),
        };
        let r = registry;
        r.register(
            "caretaker_webhook_requests",
            "Alertmanager webhook requests by HTTP status code",
            m.webhook_requests.clone(),
        );
        r.register(
            "caretaker_alerts_received",
            "Alerts received by status (firing or resolved)",
            m.alerts_received.clone(),
        );
        r.register(
            "caretaker_alerts_ignored",
            "Alerts acknowledged without action, by reason (unmatched, unknown_database, other_instance)",
            m.alerts_ignored.clone(),
        );
        r.register(
            "caretaker_auth_failures",
            "Refused requests (bearer token or basic auth), by reason",
            m.auth_failures.clone(),
        );
        r.register(
            "caretaker_action_runs",
            "Action runs by action, database and result (success or failure)",
            m.action_runs.clone(),
        );
        r.register(
            "caretaker_action_skipped",
            "Jobs not run, by action, database and reason",
            m.action_skipped.clone(),
        );
        r.register(
            "caretaker_action_duration_seconds",
            "How long actions ran",
            m.action_duration.clone(),
        );
        r.register(
            "caretaker_action_last_success_timestamp_seconds",
            "When an action last succeeded on a database",
            m.action_last_success.clone(),
        );
        r.register(
            "caretaker_action_breaker_open",
            "1 while the circuit breaker of an action on a database is open",
            m.breaker_open.clone(),
        );
        r.register(
            "caretaker_action_queue_depth",
            "Jobs accepted and waiting for a worker",
            m.queue_depth.clone(),
        );
        r.register(
            "caretaker_remediation_resolved",
            "Remediated alert episodes that then resolved, by action",
            m.remediation_resolved.clone(),
        );
        r.register(
            "caretaker_remediation_unresolved",
            "Repeats of alert episodes that an action had already remediated, by action",
            m.remediation_unresolved.clone(),
        );
        r.register(
            "caretaker_remediation_time_to_resolve_seconds",
            "From an alert firing to its resolution, for remediated episodes",
            m.time_to_resolve.clone(),
        );
        Self {
            families: m,
            changes: AtomicU64::new(0),
            known: Mutex::default(),
        }
    }
}

impl ResponderMetrics {
    /// Counts a job that was not run, with its reason.
    pub fn skipped(&self, action: &str, database: &str, reason: SkipReason) {
        self.touch()
            .action_skipped
            .get_or_create(&labels(&[
                ("action", action),
                ("database", database),
                ("reason", reason.as_str()),
            ]))
            .inc();
    }

    /// Creates at 0 every series whose labels the configuration knows: runs
    /// of every action on every database, and the breakers and skips of the
    /// pairs that alerts and schedules can run. The first failure, refusal or
    /// open breaker is then a change that rules can see. A database with
    /// `detail = "summary"` gets runs at 0 only for the actions its rules and
    /// schedules name (22 series of a summary's 87 were runs at 0 of every
    /// action); any other action's series appear at its first run.
    ///
    /// A database the configuration no longer has loses its series (as the
    /// collectors' go), so a project removed from a fleet leaves nothing.
    pub fn initialize(&self, config: &Config) {
        let families = self.touch();
        let actions: BTreeSet<String> = ActionKind::ALL
            .iter()
            .map(ActionKind::to_string)
            .chain(
                config
                    .commands
                    .iter()
                    .map(|c| ActionKind::Command(c.name.clone()).to_string()),
            )
            .collect();
        let databases: BTreeSet<String> = config.databases.iter().map(|d| d.name.clone()).collect();
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let (was_databases, was_actions) = &*known;
        for database in was_databases.difference(&databases) {
            forget(&families, database, was_actions.union(&actions));
        }
        *known = (databases, actions.clone());
        drop(known);
        let pairs = automatic_pairs(config);
        for action in actions {
            for db in &config.databases {
                let named = || pairs.contains(&(action.clone(), db.name.clone()));
                if db.detail == Detail::Summary && !named() {
                    continue;
                }
                for result in ["success", "failure"] {
                    let _ = families.action_runs.get_or_create(&labels(&[
                        ("action", &action),
                        ("database", &db.name),
                        ("result", result),
                    ]));
                }
            }
            let _ = families
                .remediation_resolved
                .get_or_create(&labels(&[("action", &action)]));
            let _ = families
                .remediation_unresolved
                .get_or_create(&labels(&[("action", &action)]));
        }
        for (action, database) in pairs {
            let pair = labels(&[("action", &action), ("database", &database)]);
            let _ = families.breaker_open.get_or_create(&pair);
            for reason in SkipReason::AUTOMATIC {
                let _ = families.action_skipped.get_or_create(&labels(&[
                    ("action", &action),
                    ("database", &database),
                    ("reason", reason.as_str()),
                ]));
            }
        }
        let _ = families.action_skipped.get_or_create(&labels(&[
            ("action", ""),
            ("database", ""),
            ("reason", SkipReason::QueueFull.as_str()),
        ]));
        for reason in [
            "no_token_configured",
            "token_in_query",
            "missing",
            "wrong",
            "basic_auth_missing",
            "basic_auth_wrong",
        ] {
            let _ = families
                .auth_failures
                .get_or_create(&labels(&[("reason", reason)]));
        }
        for status in ["firing", "resolved"] {
            let _ = families
                .alerts_received
                .get_or_create(&labels(&[("status", status)]));
        }
        for reason in ["unmatched", "unknown_database", "other_instance"] {
            let _ = families
                .alerts_ignored
                .get_or_create(&labels(&[("reason", reason)]));
        }
    }
}

/// Removes every series of `database` that any of `actions` could have had.
fn forget<'a>(families: &Families, database: &str, actions: impl Iterator<Item = &'a String>) {
    for action in actions {
        let pair = labels(&[("action", action), ("database", database)]);
        families.action_last_success.remove(&pair);
        families.breaker_open.remove(&pair);
        for result in [RunResult::Success, RunResult::Failure] {
            let run = labels(&[
                ("action", action),
                ("database", database),
                ("result", result.as_str()),
            ]);
            families.action_runs.remove(&run);
        }
        for reason in SkipReason::ALL {
            let skip = labels(&[
                ("action", action),
                ("database", database),
                ("reason", reason.as_str()),
            ]);
            families.action_skipped.remove(&skip);
        }
    }
}

/// The (action, database) pairs that alerts and schedules can run: each
/// `[[rule]]`'s and `[[schedule]]`'s actions on its database, or on every
/// database when it names none (a rule then follows the alert's label).
pub fn automatic_pairs(config: &Config) -> BTreeSet<(String, String)> {
    let every: Vec<&str> = config.databases.iter().map(|d| d.name.as_str()).collect();
    let rules = config
        .rules
        .iter()
        .map(|r| (&r.actions, r.database.as_deref()));
    let schedules = config
        .schedules
        .iter()
        .map(|s| (&s.actions, s.database.as_deref()));
    let mut pairs = BTreeSet::new();
    for (actions, database) in rules.chain(schedules) {
        let databases = database.map_or_else(|| every.clone(), |d| vec![d]);
        for action in actions {
            for db in &databases {
                pairs.insert((action.clone(), db.to_string()));
            }
        }
    }
    pairs
}

impl ResponderMetrics {
    /// Sets every breaker of `config` from the job history, so a breaker
    /// that was open when caretaker stopped shows open again at once.
    pub fn restore_breakers(&self, config: &Config, state: &StateStore) -> rusqlite::Result<()> {
        let r = &config.responder;
        let limits = Limits::of(r, Duration::ZERO);
        for (action, database) in automatic_pairs(config) {
            let attempts = state.attempts(&action, &database, 100)?;
            let open = breaker_open_failures(&attempts, &limits);
            self.touch()
                .breaker_open
                .get_or_create(&labels(&[("action", &action), ("database", &database)]))
                .set(i64::from(open));
        }
        Ok(())
    }
}

/// Shorthand for label vectors.
pub fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}
