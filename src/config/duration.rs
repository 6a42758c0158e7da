//! humantime durations (`15s`, `1h30m`, `30d`) as TOML strings.
//!
//! Every duration is positive and at most [`MAX_DURATION`]: deadlines are
//! computed as `Instant + duration`, and a century-long timeout overflowed
//! that sum and panicked every collector.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The longest duration any setting takes (10 years; retention beyond that
/// is better served by no retention at all).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A duration written the humantime way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parsed = humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))?;
        if parsed.is_zero() {
            return Err(serde::de::Error::custom(format!(
                "duration {text:?} must be positive"
            )));
        }
        if parsed > MAX_DURATION {
            return Err(serde::de::Error::custom(format!(
                "duration {text:?} must be at most 10 years"
            )));
        }
        Ok(HumanDuration(parsed))
    }
}
