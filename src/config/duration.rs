//! humantime durations (`15s`, `1h30m`, `30d`) as TOML strings.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

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
        Ok(HumanDuration(parsed))
    }
}
