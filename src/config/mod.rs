//! `/etc/ecs-boot/config.toml`: the baked configuration, with the trusted drop-ins of
//! `config.d/` merged over it (see `files`). Unknown keys are errors (a typo must not silently drop
//! a setting), and every error names the key and the file.

mod container;
mod duration;
pub mod evidence;
pub mod extensions;
pub mod files;
mod fragment;
pub mod health;
pub mod layers;
pub mod observability;
pub mod preflight;
pub mod schema;
pub mod tags;
pub mod trust;

pub use evidence::RecorderSection;
pub use health::{HealthSection, OnEssentialFailure};
pub use observability::{LogsSection, MetricsSection};
pub use trust::TrustSection;

#[cfg(test)]
pub use container::test_spec;
pub use container::{ContainerSpec, PullPolicy};
pub use extensions::{BootstrapSpec, HookCommand, HooksSection};

use crate::sources::imds::Identity;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: {key}: {problem}")]
    Invalid {
        origin: String,
        key: String,
        problem: String,
    },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub ecs: EcsSection,
    pub tags: TagsSection,
    pub imds: ImdsSection,
    pub ecs_agent: EcsAgentSection,
    pub lifecycle: LifecycleSection,
    pub drain: DrainSection,
    pub docker: DockerSection,
    pub trust: TrustSection,
    pub proxy: ProxySection,
    pub recorder: RecorderSection,
    /// What an essential container dying after launch does. Trusted layers only.
    pub health: HealthSection,
    /// What ecs-boot publishes to CloudWatch itself. Trusted layers only.
    pub metrics: MetricsSection,
    /// The host logs the CloudWatch agent ships. Trusted layers only.
    pub logs: LogsSection,
    #[serde(rename = "container")]
    pub containers: Vec<ContainerSpec>,
    /// One-shot containers run in order before the ECS agent may start.
    pub bootstrap: Vec<BootstrapSpec>,
    /// Operator commands at lifecycle steps. Trusted layers only, never from a fragment.
    pub hooks: HooksSection,
    /// The trusted layers merged (placeholders substituted), so a fragment can be merged over it.
    #[serde(skip)]
    pub raw: toml::Table,
    /// The trusted layers as read, kept to substitute the identity once it is known.
    #[serde(skip)]
    pub layers: Vec<files::Layer>,
    /// The fragment merged over `layers`, if a tag named one: where each value came from.
    #[serde(skip)]
    pub fragment: Option<files::Layer>,
    /// Where the effective config came from, for errors and status (`a.toml + config.d/10.toml`).
    #[serde(skip)]
    pub origin: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EcsSection {
    /// Used when the instance has no `ecs-boot:cluster` tag.
    pub cluster: Option<String>,
    /// `s3://bucket/key` or `ssm:/name`; used when the instance has no `ecs-boot:registry-auth` tag.
    pub registry_auth: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// Any agent variable ecs-boot knows, security-relevant ones included (the AMI is trusted).
    pub settings: BTreeMap<String, String>,
    /// Names tags may not override: agent variables, or `cluster`, `registry-auth`, `config`,
    /// `attributes`.
    pub locked: Vec<String>,
    /// Any agent variable, including ones ecs-boot does not know yet (checked by type where it
    /// knows it). Trusted layers only: never from a tag or fragment.
    pub extra_settings: BTreeMap<String, String>,
}

impl ProxySection {
    /// HTTP_PROXY, HTTPS_PROXY and NO_PROXY (with the local endpoints) for the agent and Docker.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        crate::util::proxy::agent_proxy_vars(
            self.http_proxy.as_deref(),
            self.https_proxy.as_deref(),
            &self.no_proxy,
        )
    }
}

/// Proxies for the ECS agent (ecs.config) and Docker (a docker.service environment file). IMDS,
/// the task metadata endpoint and the ECS agent's local endpoints always bypass them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySection {
    /// `http://host:port` for plain HTTP (HTTP_PROXY).
    pub http_proxy: Option<String>,
    /// `http://host:port` for HTTPS (HTTPS_PROXY): ECS, ECR, S3, registries.
    pub https_proxy: Option<String>,
    /// Hosts that bypass the proxy, besides the local endpoints ecs-boot always adds.
    pub no_proxy: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TagsSection {
    /// How long to wait for required tags: ASG tag propagation can lag the boot.
    #[serde(with = "duration")]
    pub wait: Duration,
    /// Tags to wait for besides `ecs-boot:cluster` (which is required unless `[ecs] cluster` is set).
    pub required: Vec<String>,
}

impl Default for TagsSection {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(120),
            required: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImdsSection {
    /// Per-request deadline for one IMDS answer (retries included).
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for ImdsSection {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EcsAgentSection {
    /// Base URL of the agent's introspection API (host network only: ecs-init firewalls it).
    pub introspection_url: String,
    /// How long the agent may take to register before the boot fails.
    #[serde(with = "duration")]
    pub registration_timeout: Duration,
}

impl Default for EcsAgentSection {
    fn default() -> Self {
        Self {
            introspection_url: "http://127.0.0.1:51678".into(),
            registration_timeout: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// ABANDON the launch hook so the ASG replaces the instance at once.
    #[default]
    Abandon,
    /// Leave the hook pending (for debugging); it times out to its DefaultResult.
    Leave,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DeadlineResult {
    Continue,
    Abandon,
}

impl DeadlineResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineResult::Continue => "CONTINUE",
            DeadlineResult::Abandon => "ABANDON",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSection {
    /// Hook names; when empty, the `ecs-boot:*-hook` tags, else discovered from the ASG.
    pub launch_hook: Option<String>,
    pub terminate_hook: Option<String>,
    pub on_failure: OnFailure,
    /// Heartbeat period; by default a third of the hook's heartbeat timeout (at most 5 min).
    #[serde(with = "duration::option")]
    pub heartbeat_interval: Option<Duration>,
}

impl Default for LifecycleSection {
    fn default() -> Self {
        Self {
            launch_hook: None,
            terminate_hook: None,
            on_failure: OnFailure::Abandon,
            heartbeat_interval: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrainSection {
    /// Watch for termination (lifecycle state, spot notices) and drain.
    pub enabled: bool,
    /// How often to read target-lifecycle-state and the spot notice.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Longest drain before the terminate hook is completed anyway with `result_on_deadline`.
    #[serde(with = "duration")]
    pub deadline: Duration,
    /// After this long, standalone tasks (not part of a service), which DRAINING leaves running,
    /// are stopped.
    #[serde(with = "duration")]
    pub standalone_grace: Duration,
    pub result_on_deadline: DeadlineResult,
    pub spot: bool,
    pub rebalance: bool,
}

impl Default for DrainSection {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval: Duration::from_secs(5),
            deadline: Duration::from_secs(900),
            standalone_grace: Duration::from_secs(120),
            result_on_deadline: DeadlineResult::Continue,
            spot: true,
            rebalance: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerSection {
    /// How long to wait for the Docker engine to answer.
    #[serde(with = "duration")]
    pub engine_wait: Duration,
}

impl Default for DockerSection {
    fn default() -> Self {
        Self {
            engine_wait: Duration::from_secs(60),
        }
    }
}

/// Names `[ecs] locked` may hold besides agent variables.
pub const LOCKABLE_KEYS: &[&str] = &["cluster", "registry-auth", "config", "attributes"];

impl Config {
    /// Reads the baked file at `path` (missing = defaults) and the `config.d/` drop-ins beside it,
    /// with stand-ins for the identity placeholders until `with_identity` replaces them.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::from_layers(files::read_layers(path)?, None)
    }

    /// One file's text only (`check-config FILE`, tests): no drop-ins.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let table = parse_table(text, origin, false)?;
        Config::from_layers(
            vec![files::Layer {
                origin: origin.to_string(),
                table,
                drop_in: false,
            }],
            None,
        )
    }

    /// The same layers with the identity document's values in the placeholders.
    pub fn with_identity(&self, identity: &Identity) -> Result<Config, ConfigError> {
        Config::from_layers(self.layers.clone(), Some(identity))
    }

    fn from_layers(
        layers: Vec<files::Layer>,
        identity: Option<&Identity>,
    ) -> Result<Config, ConfigError> {
        let mut merged = toml::Table::new();
        for layer in &layers {
            let mut table = layer.table.clone();
            files::substitute(&mut table, identity, &layer.origin)?;
            // Each layer must be valid on its own, so an error names the file that has it.
            Config::from_table(table.clone(), &layer.origin)?;
            fragment::merge_tables(&mut merged, table);
        }
        let origin = match layers.len() {
            0 => "defaults".to_string(),
            _ => layers
                .iter()
                .map(|l| l.origin.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
        };
        let mut config = Config::from_table(merged, &origin)?;
        config.layers = layers;
        config.origin = origin;
        Ok(config)
    }

    pub fn from_table(raw: toml::Table, origin: &str) -> Result<Config, ConfigError> {
        let mut config: Config =
            toml::Value::Table(raw.clone())
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    origin: origin.to_string(),
                    // From a table, not text: no source excerpt, and the key path is included.
                    message: one_line(&e.to_string()),
                })?;
        config.raw = raw;
        config.origin = origin.to_string();
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks what serde cannot: values the ECS agent or Docker would reject later.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, problem: String| ConfigError::Invalid {
            origin: origin.to_string(),
            key,
            problem,
        };
        if let Some(c) = &self.ecs.cluster {
            crate::config::tags::check_cluster_name(c)
                .map_err(|p| invalid("ecs.cluster".into(), p))?;
        }
        if let Some(loc) = &self.ecs.registry_auth {
            crate::sources::location::Location::parse(loc)
                .map_err(|e| invalid("ecs.registry_auth".into(), e.to_string()))?;
        }
        for (name, value) in &self.ecs.attributes {
            // The key is named in the error as written, escaped: it may be anything.
            let key = || format!("ecs.attributes.{}", name.escape_debug());
            crate::ecs_config::attribute::check_name(name).map_err(|p| invalid(key(), p))?;
            crate::ecs_config::attribute::check_value(value).map_err(|p| invalid(key(), p))?;
        }
        for (name, value) in &self.ecs.settings {
            crate::config::layers::check_setting(name, value, crate::config::layers::Source::Baked)
                .map_err(|e| invalid(format!("ecs.settings.{name}"), e.to_string()))?;
        }
        for name in &self.ecs.locked {
            if !LOCKABLE_KEYS.contains(&name.as_str())
                && crate::ecs_config::vars::lookup(name).is_none()
            {
                return Err(invalid(
                    "ecs.locked".into(),
                    format!(
                        "{name:?} is neither an agent variable nor one of {}",
                        LOCKABLE_KEYS.join(", ")
                    ),
                ));
            }
        }
        for (name, value) in &self.ecs.extra_settings {
            layers::check_extra_setting(name, value)
                .map_err(|e| invalid(format!("ecs.extra_settings.{name}"), e.to_string()))?;
        }
        for (list, prefixes) in [
            ("fragment_prefixes", &self.trust.fragment_prefixes),
            ("registry_auth_prefixes", &self.trust.registry_auth_prefixes),
        ] {
            for p in prefixes {
                trust::check_prefix(p).map_err(|e| invalid(format!("trust.{list}"), e))?;
            }
        }
        for key in &self.trust.fragment_keys {
            trust::check_fragment_key(key).map_err(|e| invalid("trust.fragment_keys".into(), e))?;
        }
        for (key, url) in [
            ("proxy.http_proxy", &self.proxy.http_proxy),
            ("proxy.https_proxy", &self.proxy.https_proxy),
        ] {
            if let Some(url) = url {
                crate::util::proxy::check_proxy_url(url).map_err(|e| invalid(key.into(), e))?;
            }
        }
        for host in &self.proxy.no_proxy {
            crate::util::proxy::check_no_proxy_host(host)
                .map_err(|e| invalid("proxy.no_proxy".into(), e))?;
        }
        self.recorder
            .check()
            .map_err(|(field, p)| invalid(format!("recorder.{field}"), p))?;
        self.health
            .check()
            .map_err(|(field, p)| invalid(format!("health.{field}"), p))?;
        self.metrics
            .check()
            .map_err(|(field, p)| invalid(format!("metrics.{field}"), p))?;
        self.logs
            .check()
            .map_err(|(field, p)| invalid(format!("logs.{field}"), p))?;
        if !self.ecs_agent.introspection_url.starts_with("http://") {
            return Err(invalid(
                "ecs_agent.introspection_url".into(),
                "must be an http:// URL on the host".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.containers.iter().enumerate() {
            c.validate()
                .map_err(|(field, problem)| invalid(format!("container[{i}].{field}"), problem))?;
            if !seen.insert(c.name.as_str()) {
                return Err(invalid(
                    format!("container[{i}].name"),
                    format!("{:?} is used by another container", c.name),
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, b) in self.bootstrap.iter().enumerate() {
            b.validate()
                .map_err(|(field, problem)| invalid(format!("bootstrap[{i}].{field}"), problem))?;
            if !seen.insert(b.name.as_str()) {
                return Err(invalid(
                    format!("bootstrap[{i}].name"),
                    format!("{:?} is used by another bootstrap container", b.name),
                ));
            }
        }
        self.hooks
            .validate()
            .map_err(|(key, problem)| invalid(key, problem))?;
        Ok(())
    }

    /// Memory that system containers may use, reserved from ECS so it does not overcommit the node.
    pub fn system_container_memory_mib(&self) -> u64 {
        // Saturating: a sum past any real machine is refused later (it cannot fit the agent's
        // 16-bit ECS_RESERVED_MEMORY), and must not wrap into a small number first.
        self.containers
            .iter()
            .filter_map(|c| c.memory_mib)
            .fold(0, u64::saturating_add)
    }
}

/// Parses TOML text from `origin`. A local file's error gives toml's message without its source
/// excerpt; a fetched one (`fetched`) gives only the line, column and kind of problem: its
/// content may be a secret someone pointed a tag at, and an error must never carry it.
pub fn parse_table(text: &str, origin: &str, fetched: bool) -> Result<toml::Table, ConfigError> {
    toml::from_str::<toml::Table>(text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let (line, column) = line_column(text, span.start);
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        let message = if fetched {
            format!("{at}not valid TOML")
        } else {
            format!("{at}{}", one_line(e.message()))
        };
        ConfigError::Parse {
            origin: origin.to_string(),
            message,
        }
    })
}

/// 1-based line and column (in characters) of byte offset `at`.
pub fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// toml's messages may span several lines; keep them to one journald line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_means_defaults() {
        let c = Config::parse("", "test").unwrap();
        assert_eq!(c.tags.wait, Duration::from_secs(120));
        assert_eq!(c.lifecycle.on_failure, OnFailure::Abandon);
        assert!(c.containers.is_empty());
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("[ecs]\nclustre = \"x\"\n", "config.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("clustre"),
            "{err}"
        );
    }

    #[test]
    fn bad_setting_names_the_key() {
        let err = Config::parse("[ecs.settings]\nECS_LOGLEVEL = \"loud\"\n", "config.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ecs.settings.ECS_LOGLEVEL"), "{err}");
        let err = Config::parse("[ecs.settings]\nECS_NOPE = \"1\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ECS_NOPE"), "{err}");
    }

    #[test]
    fn durations_are_human() {
        let c = Config::parse(
            "[tags]\nwait = \"2m 30s\"\n[drain]\ndeadline = \"1h\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.tags.wait, Duration::from_secs(150));
        assert_eq!(c.drain.deadline, Duration::from_secs(3600));
        let err = Config::parse("[tags]\nwait = \"soon\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("wait"), "{err}");
    }

    #[test]
    fn attributes_in_the_config_follow_ecs_rules() {
        for (doc, key) in [
            ("[ecs.attributes]\n\"a@b\" = \"x\"\n", "ecs.attributes.a@b"),
            (
                "[ecs.attributes]\n\"ecs-boot.drained\" = \"x\"\n",
                "ecs.attributes.ecs-boot.drained",
            ),
            (
                "[ecs.attributes]\nstack = \"blü\"\n",
                "ecs.attributes.stack",
            ),
        ] {
            let err = Config::parse(doc, "c.toml").unwrap_err().to_string();
            assert!(err.starts_with(&format!("c.toml: {key}: ")), "{err}");
        }
        assert!(Config::parse("[ecs.attributes]\n\"team/web\" = \"a b:c\"\n", "t").is_ok());
    }

    #[test]
    fn locked_names_are_checked() {
        assert!(
            Config::parse(
                "[ecs]\nlocked = [\"registry-auth\", \"ECS_LOGLEVEL\"]\n",
                "t"
            )
            .is_ok()
        );
        assert!(Config::parse("[ecs]\nlocked = [\"everything\"]\n", "t").is_err());
    }
}
