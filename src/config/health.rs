//! `[health]`: what ecs-boot does when an essential system container dies for good after launch
//! (src/lifecycle/health.rs). Trusted layers only (config/trust.rs NEVER_OPEN): a tag that could
//! turn a crash into a drain could empty a cluster by crashing a log shipper on every node.

use super::duration;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnEssentialFailure {
    /// `ecs-boot.ready=false` only: placement constraints keep new tasks away, running ones stay.
    #[default]
    Mark,
    /// Also drain the instance (DRAINING), as `ecs-boot drain` would; `ecs-boot undrain` (or a
    /// new instance) brings it back.
    Drain,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSection {
    pub on_essential_failure: OnEssentialFailure,
    /// How long an essential container that stopped has for its restart policy to bring it back
    /// before it counts as dead for good; also the uptime that makes a failed one healthy again.
    #[serde(with = "duration")]
    pub restart_grace: Duration,
}

impl Default for HealthSection {
    fn default() -> Self {
        Self {
            on_essential_failure: OnEssentialFailure::Mark,
            restart_grace: Duration::from_secs(10),
        }
    }
}

/// Bounds of `restart_grace`: below a second a restart policy cannot act; above ten minutes a
/// dead log shipper would go unnoticed for too long.
pub const GRACE_BOUNDS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(600));

impl HealthSection {
    /// `(field, problem)` for the first bad value.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let (min, max) = GRACE_BOUNDS;
        if self.restart_grace < min || self.restart_grace > max {
            return Err((
                "restart_grace",
                format!("must be between {}s and {}s", min.as_secs(), max.as_secs()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_mark_only_and_grace_is_bounded() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.health.on_essential_failure, OnEssentialFailure::Mark);
        assert_eq!(c.health.restart_grace, Duration::from_secs(10));
        let c = Config::parse(
            "[health]\non_essential_failure = \"drain\"\nrestart_grace = \"2s\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.health.on_essential_failure, OnEssentialFailure::Drain);
        for bad in ["0s", "500ms", "11m"] {
            let err = Config::parse(&format!("[health]\nrestart_grace = \"{bad}\"\n"), "c.toml")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("c.toml: health.restart_grace: "), "{err}");
        }
        assert!(Config::parse("[health]\non_essential_failure = \"reboot\"\n", "t").is_err());
    }

    #[test]
    fn config_d_may_set_it() {
        let dir = tempfile::tempdir().unwrap();
        let baked = dir.path().join("config.toml");
        std::fs::write(&baked, "[health]\nrestart_grace = \"30s\"\n").unwrap();
        std::fs::create_dir(dir.path().join("config.d")).unwrap();
        std::fs::write(
            dir.path().join("config.d/50-group.toml"),
            "[health]\non_essential_failure = \"drain\"\n",
        )
        .unwrap();
        let c = Config::load(&baked).unwrap();
        assert_eq!(c.health.on_essential_failure, OnEssentialFailure::Drain);
        assert_eq!(c.health.restart_grace, Duration::from_secs(30));
    }
}
