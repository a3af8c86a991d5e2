//! `[[container]]`: a system container (metrics agent, log shipper, ...) ecs-boot runs on the local
//! Docker engine and keeps as configured.

use super::duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

/// Serialize is used for the config hash label: any change to a field replaces the container.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Docker bind strings, `host:container[:ro]`.
    #[serde(default)]
    pub binds: Vec<String>,
    /// `host` by default: no container then needs IMDS hop limit 2 to reach the instance role.
    #[serde(default = "default_network")]
    pub network_mode: String,
    #[serde(default)]
    pub pid_mode: Option<String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// `no`, `always`, `unless-stopped` or `on-failure[:N]`.
    #[serde(default = "default_restart")]
    pub restart: String,
    #[serde(default)]
    pub memory_mib: Option<u64>,
    #[serde(default)]
    pub log_driver: Option<String>,
    #[serde(default)]
    pub log_options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The boot fails (and the launch hook is abandoned) if an essential container cannot run.
    #[serde(default)]
    pub essential: bool,
    #[serde(default)]
    pub pull: PullPolicy,
    /// An essential container counts as up only after running this long (or reporting healthy).
    #[serde(default = "default_min_uptime", with = "duration_ser")]
    pub min_uptime: Duration,
}

fn default_network() -> String {
    "host".into()
}
fn default_restart() -> String {
    "unless-stopped".into()
}
fn default_min_uptime() -> Duration {
    Duration::from_secs(3)
}

mod duration_ser {
    pub use super::duration::deserialize;
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u128(d.as_millis())
    }
}

impl ContainerSpec {
    /// Returns the offending field and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 128
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && self
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if !name_ok {
            return Err((
                "name",
                format!(
                    "{:?} is not a Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)",
                    self.name
                ),
            ));
        }
        if self.image.trim().is_empty() || self.image.chars().any(char::is_whitespace) {
            return Err((
                "image",
                format!("{:?} is not an image reference", self.image),
            ));
        }
        let restart_ok = matches!(
            self.restart.as_str(),
            "no" | "always" | "unless-stopped" | "on-failure"
        ) || self
            .restart
            .strip_prefix("on-failure:")
            .is_some_and(|n| n.parse::<u32>().is_ok());
        if !restart_ok {
            return Err((
                "restart",
                format!(
                    "{:?}: use no, always, unless-stopped or on-failure[:N]",
                    self.restart
                ),
            ));
        }
        for b in &self.binds {
            let parts: Vec<&str> = b.split(':').collect();
            if parts.len() < 2 || parts.len() > 3 || !parts[1].starts_with('/') {
                return Err(("binds", format!("{b:?} is not host:container[:options]")));
            }
        }
        if self.memory_mib == Some(0) {
            return Err(("memory_mib", "must be at least 1 (or left out)".into()));
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || v.contains('\0') {
                return Err(("env", format!("{k:?} is not a valid environment variable")));
            }
        }
        Ok(())
    }
}

/// A container named `cw` with image `img:1` plus `extra` TOML lines, for tests.
#[cfg(test)]
pub fn test_spec(extra: &str) -> ContainerSpec {
    crate::config::Config::parse(
        &format!("[[container]]\nname = \"cw\"\nimage = \"img:1\"\n{extra}"),
        "t",
    )
    .unwrap()
    .containers
    .remove(0)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn container_defaults_keep_host_networking() {
        let c = Config::parse("[[container]]\nname = \"cwagent\"\nimage = \"public.ecr.aws/cloudwatch-agent/cloudwatch-agent:latest\"\nmemory_mib = 128\n", "t").unwrap();
        let spec = &c.containers[0];
        assert_eq!(spec.network_mode, "host");
        assert_eq!(spec.restart, "unless-stopped");
        assert_eq!(c.system_container_memory_mib(), 128);
    }

    #[test]
    fn container_errors_name_the_index_and_field() {
        let err = Config::parse(
            "[[container]]\nname = \"a\"\nimage = \"x\"\nrestart = \"sometimes\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("container[0].restart"), "{err}");
        let err = Config::parse("[[container]]\nname = \"a\"\nimage = \"x\"\n[[container]]\nname = \"a\"\nimage = \"y\"\n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("container[1].name"), "{err}");
    }
}
