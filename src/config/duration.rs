//! Durations in config.toml are human strings (`"90s"`, `"2m 30s"`, `"1h"`).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Longer than any wait ecs-boot has (Auto Scaling's global hook timeout is 48 h); also keeps
/// every deadline computed from a duration far from overflowing.
pub const MAX: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    let d = humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "{s:?} is not a duration such as \"90s\" or \"2m\": {e}"
        ))
    })?;
    if d > MAX {
        return Err(serde::de::Error::custom(format!(
            "{s:?} is longer than 7 days"
        )));
    }
    Ok(d)
}

pub mod option {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}
