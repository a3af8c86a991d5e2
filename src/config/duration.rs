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

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct T {
        #[serde(with = "super")]
        d: std::time::Duration,
    }

    #[test]
    fn overflowing_durations_are_errors_not_panics() {
        for v in [
            "99999999999999999999h",
            "18446744073709551615s 1s",
            "500000000000y",
            "1e400s",
            "8d",
        ] {
            let err = toml::from_str::<T>(&format!("d = {v:?}"))
                .err()
                .unwrap_or_else(|| panic!("{v} accepted"));
            assert!(err.to_string().contains(v), "{err}");
        }
        let ok: T = toml::from_str("d = \"7days\"").unwrap();
        assert_eq!(ok.d, super::MAX);
    }
}
