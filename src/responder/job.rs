//! The closed sets of a job's life: its status, where it came from, why it
//! was skipped, and what the audit says happened. Each word is written once,
//! here; everything else (the state database, `/metrics`, JSON answers, the
//! CLI) names the variant, so a typo does not compile.

/// Defines a closed set of words: the enum, `ALL`, `as_str`, `FromStr`,
/// `Display`, serde (as the word) and rusqlite (as TEXT).
macro_rules! closed_set {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The word in the state database, metrics, JSON and the audit.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownWord(s.to_string()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                word.parse().map_err(serde::de::Error::custom)
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

/// A word that is not a member of the set it was read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown word {0:?}")]
pub struct UnknownWord(pub String);

closed_set! {
    /// Where a job is in its life.
    JobStatus {
        /// Recorded, not started.
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        /// Not run, with a [`SkipReason`].
        Skipped => "skipped",
        /// Its process stopped while it ran.
        Interrupted => "interrupted",
    }
}

impl JobStatus {
    /// A job in this status will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    /// Succeeded or failed: the action ran to a result.
    pub fn ran(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

closed_set! {
    /// Who asked for a job.
    JobSource {
        /// An Alertmanager notification.
        Webhook => "webhook",
        /// A `[[schedule]]`.
        Schedule => "schedule",
        /// The HTTP API, by hand.
        Api => "api",
        /// `caretaker run`, by hand.
        Cli => "cli",
    }
}

impl JobSource {
    /// Webhooks and schedules: cooldowns and breakers apply.
    pub fn automatic(self) -> bool {
        matches!(self, JobSource::Webhook | JobSource::Schedule)
    }
}

closed_set! {
    /// Why a job was not run (the `reason` of a skipped job and of
    /// `caretaker_action_skipped_total`).
    SkipReason {
        /// The same alert episode already has this job.
        Duplicate => "duplicate",
        Cooldown => "cooldown",
        Breaker => "breaker",
        /// The action needs configuration that is missing or disabled.
        Disabled => "disabled",
        /// A safety check of the action refused to start.
        Refused => "refused",
        UnknownDatabase => "unknown_database",
        UnknownAction => "unknown_action",
        /// The job queue had no room.
        QueueFull => "queue_full",
    }
}

impl SkipReason {
    /// The reasons a job of a known action and database may be skipped for
    /// (the others name what the configuration does not know).
    pub const AUTOMATIC: [SkipReason; 5] = [
        SkipReason::Duplicate,
        SkipReason::Cooldown,
        SkipReason::Breaker,
        SkipReason::Disabled,
        SkipReason::Refused,
    ];
}

closed_set! {
    /// What an audit event records.
    AuditKind {
        /// An alert arrived.
        Received => "received",
        /// An alert matched a rule.
        Matched => "matched",
        /// An alert was resolved.
        Resolved => "resolved",
        /// A job or an alert was not acted on.
        Skipped => "skipped",
        /// A job's action ran.
        Ran => "ran",
        /// A person overrode a safety setting.
        Override => "override",
    }
}

impl Default for JobSource {
    /// For `..Default::default()` builders: a run by hand of this process,
    /// which no other process picks up and no cooldown or breaker budget pays for.
    fn default() -> Self {
        JobSource::Cli
    }
}

impl Default for AuditKind {
    /// The first event of an alert (for `..Default::default()` builders).
    fn default() -> Self {
        AuditKind::Received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::str::FromStr + serde::Serialize,
        T: for<'de> serde::Deserialize<'de> + std::fmt::Display,
    {
        for v in all {
            assert_eq!(v.to_string().parse::<T>().ok(), Some(*v));
            let json = serde_json::to_string(v).expect("json");
            assert_eq!(json, format!("\"{v}\""));
            assert_eq!(serde_json::from_str::<T>(&json).ok(), Some(*v));
        }
    }

    #[test]
    fn every_word_reads_back_as_its_member() {
        round_trips(JobStatus::ALL);
        round_trips(JobSource::ALL);
        round_trips(SkipReason::ALL);
        round_trips(AuditKind::ALL);
        assert!("succeded".parse::<JobStatus>().is_err());
    }

    #[test]
    fn members_cross_the_state_database_as_their_word() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        for s in JobStatus::ALL {
            let (word, back): (String, JobStatus) = conn
                .query_row("SELECT ?1, ?1", [s], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("row");
            assert_eq!((word.as_str(), back), (s.as_str(), *s));
        }
        let bad: rusqlite::Result<JobStatus> =
            conn.query_row("SELECT 'nonsense'", [], |r| r.get(0));
        assert!(bad.is_err());
    }
}
