//! From an Alertmanager notification to decisions, without I/O.
//!
//! Each alert of the group is handled on its own: a resolved alert closes its
//! episode's remediation; a firing alert becomes one job per matching rule and
//! action, keyed by (rule, action, database, fingerprint, startsAt) so that
//! repeats, retries and HA duplicates map to the same job.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{Config, Rule};
use crate::responder::matcher::all_match;

/// Alertmanager's webhook payload (version 4), read leniently.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Notification {
    pub version: String,
    pub group_key: String,
    pub status: String,
    pub receiver: String,
    pub alerts: Vec<Alert>,
    /// Alertmanager 0.32 and later: why this notification was sent.
    #[serde(rename = "notification_reason", alias = "notificationReason")]
    pub notification_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Alert {
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    pub fingerprint: String,
}

impl Alert {
    pub fn alertname(&self) -> Option<&str> {
        self.labels.get("alertname").map(String::as_str)
    }

    /// The payload's fingerprint, or a hash of the label set when absent.
    pub fn fingerprint(&self) -> String {
        if !self.fingerprint.is_empty() {
            return self.fingerprint.clone();
        }
        let mut h = Sha256::new();
        for (k, v) in &self.labels {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        format!("{:x}", h.finalize())[..16].to_string()
    }
}

/// What to do about one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Run `action` on `database` for this rule.
    Run {
        rule: String,
        action: String,
        database: String,
        key: String,
        dry_run: bool,
        retry: bool,
        cooldown: std::time::Duration,
    },
    /// A resolved alert: close its episode.
    Resolved,
    /// No rule matches.
    Unmatched,
    /// A rule matches but names (or implies) no managed database.
    UnknownDatabase {
        rule: String,
        database: Option<String>,
    },
    /// The alert's `instance` label names another caretaker: never act here.
    OtherInstance { instance: String },
}

/// The `instance` values that name this caretaker: `responder.instance` when
/// set, else this host's name, `localhost` and `127.0.0.1`, each with the
/// port caretaker listens on (what a Prometheus scraping it usually labels).
pub fn identities(configured: &[String], host: Option<&str>, port: u16) -> Vec<String> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    let mut out: Vec<String> = host
        .filter(|h| !h.is_empty())
        .map(|h| format!("{h}:{port}"))
        .into_iter()
        .collect();
    for local in ["localhost", "127.0.0.1"] {
        let id = format!("{local}:{port}");
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The alert's `instance` when it names a caretaker other than `identities`;
/// an alert without the label is nobody else's.
pub fn other_instance<'a>(alert: &'a Alert, identities: &[String]) -> Option<&'a str> {
    let instance = alert.labels.get("instance")?;
    (!identities.iter().any(|i| i == instance)).then_some(instance.as_str())
}

/// Decides about one alert for the caretaker named by `identities`: an alert
/// for another instance is ignored whole (firing or resolved).
pub fn decide_here(alert: &Alert, config: &Config, identities: &[String]) -> Vec<Decision> {
    match other_instance(alert, identities) {
        Some(instance) => vec![Decision::OtherInstance {
            instance: instance.to_string(),
        }],
        None => decide(alert, config),
    }
}

/// The key that identifies one job of one alert episode.
pub fn job_key(
    rule: &str,
    action: &str,
    database: &str,
    fingerprint: &str,
    starts_at: &str,
) -> String {
    // Bounded: the key is stored with every job (see `bounded`).
    let fingerprint = crate::responder::bounded::fingerprint(fingerprint);
    let starts_at = crate::responder::bounded::fingerprint(starts_at);
    crate::responder::bounded::key(format!(
        "alert/{rule}/{action}/{database}/{fingerprint}/{starts_at}"
    ))
}

/// Which database a rule acts on for this alert.
fn database_for(rule: &Rule, alert: &Alert, config: &Config) -> Result<String, Option<String>> {
    let named = rule
        .database
        .clone()
        .or_else(|| alert.labels.get("database").cloned());
    match named {
        Some(name) if config.database(&name).is_some() => Ok(name),
        Some(name) => Err(Some(name)),
        None if config.databases.len() == 1 => Ok(config.databases[0].name.clone()),
        None => Err(None),
    }
}

/// Decides about one alert.
pub fn decide(alert: &Alert, config: &Config) -> Vec<Decision> {
    if alert.status == "resolved" {
        return vec![Decision::Resolved];
    }
    let fingerprint = alert.fingerprint();
    let mut out = Vec::new();
    for rule in config
        .rules
        .iter()
        .filter(|r| all_match(&r.matchers, &alert.labels))
    {
        match database_for(rule, alert, config) {
            Ok(database) => {
                for action in &rule.actions {
                    out.push(Decision::Run {
                        rule: rule.name.clone(),
                        action: action.clone(),
                        key: job_key(
                            &rule.name,
                            action,
                            &database,
                            &fingerprint,
                            &alert.starts_at,
                        ),
                        database: database.clone(),
                        dry_run: rule.dry_run,
                        retry: rule.retry,
                        cooldown: rule.cooldown,
                    });
                }
            }
            Err(database) => out.push(Decision::UnknownDatabase {
                rule: rule.name.clone(),
                database,
            }),
        }
    }
    if out.is_empty() {
        out.push(Decision::Unmatched);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[[database]]\nname = \"memory\"\npath = \"m.db\"\n{extra}\n[[rule]]\nname = \"purge\"\nmatchers = ['alertname=\"CaretakerExpiredEntriesHigh\"']\nactions = [\"purge_expired\"]\ncooldown = \"10m\"\n"
        );
        Config::parse(Path::new("/c.toml"), &text).expect("config")
    }

    fn alert(labels: &[(&str, &str)], status: &str) -> Alert {
        Alert {
            status: status.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts_at: "2026-01-01T00:00:00Z".into(),
            fingerprint: "abc".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_matching_alert_becomes_a_keyed_job_on_the_only_database() {
        let d = decide(
            &alert(&[("alertname", "CaretakerExpiredEntriesHigh")], "firing"),
            &config(""),
        );
        let Decision::Run {
            key,
            database,
            action,
            ..
        } = &d[0]
        else {
            panic!("{d:?}")
        };
        assert_eq!(database, "memory");
        assert_eq!(action, "purge_expired");
        assert_eq!(
            key,
            &job_key(
                "purge",
                "purge_expired",
                "memory",
                "abc",
                "2026-01-01T00:00:00Z"
            )
        );
    }

    #[test]
    fn unknown_databases_unmatched_and_resolved_alerts() {
        let two = config("[[database]]\nname = \"other\"\npath = \"o.db\"\n");
        let firing = alert(&[("alertname", "CaretakerExpiredEntriesHigh")], "firing");
        assert_eq!(
            decide(&firing, &two),
            vec![Decision::UnknownDatabase {
                rule: "purge".into(),
                database: None
            }]
        );
        let named = alert(
            &[
                ("alertname", "CaretakerExpiredEntriesHigh"),
                ("database", "nope"),
            ],
            "firing",
        );
        assert!(
            matches!(&decide(&named, &two)[0], Decision::UnknownDatabase { database: Some(n), .. } if n == "nope")
        );
        assert_eq!(
            decide(&alert(&[("alertname", "Other")], "firing"), &two),
            vec![Decision::Unmatched]
        );
        assert_eq!(
            decide(&alert(&[("alertname", "Other")], "resolved"), &two),
            vec![Decision::Resolved]
        );
    }

    #[test]
    fn an_alert_for_another_instance_never_becomes_a_job() {
        let ids = identities(&[], Some("db1"), 10210);
        assert_eq!(ids, ["db1:10210", "localhost:10210", "127.0.0.1:10210"]);
        let purge = |instance: Option<&str>, status: &str| {
            let mut labels = vec![("alertname", "CaretakerExpiredEntriesHigh")];
            labels.extend(instance.map(|i| ("instance", i)));
            decide_here(&alert(&labels, status), &config(""), &ids)
        };
        for status in ["firing", "resolved"] {
            assert_eq!(
                purge(Some("db2:10210"), status),
                vec![Decision::OtherInstance {
                    instance: "db2:10210".into()
                }]
            );
        }
        assert!(matches!(
            &purge(Some("db1:10210"), "firing")[0],
            Decision::Run { .. }
        ));
        assert!(matches!(
            &purge(Some("127.0.0.1:10210"), "firing")[0],
            Decision::Run { .. }
        ));
        assert!(
            matches!(&purge(None, "firing")[0], Decision::Run { .. }),
            "no instance label: today's behaviour"
        );
        let configured = identities(&["db1.example.com:10210".into()], Some("db1"), 10210);
        assert_eq!(configured, ["db1.example.com:10210"]);
        assert_eq!(
            other_instance(
                &alert(&[("instance", "localhost:10210")], "firing"),
                &configured
            ),
            Some("localhost:10210"),
            "an explicit list replaces the defaults"
        );
        assert_eq!(identities(&[], None, 1)[0], "localhost:1");
    }

    #[test]
    fn payloads_are_read_leniently() {
        let json = r#"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"X"},
            "startsAt":"2026-01-01T00:00:00Z","fingerprint":"f","unknownField":1}],"notification_reason":"repeat interval elapsed","routeLabels":{}}"#;
        let n: Notification = serde_json::from_str(json).expect("parse");
        assert_eq!(n.alerts[0].fingerprint(), "f");
        assert_eq!(
            n.notification_reason.as_deref(),
            Some("repeat interval elapsed")
        );
        let no_fp = alert(&[("a", "1")], "firing");
        let mut no_fp2 = no_fp.clone();
        no_fp2.fingerprint.clear();
        assert_eq!(no_fp2.fingerprint().len(), 16);
    }
}
