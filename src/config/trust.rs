//! What the untrusted channel (tags, and the fragments a tag names) may reach, decided by the
//! trusted one (the baked config and config.d): where a tag may point ecs-boot at, and which keys
//! a fragment may set. Everything not opened here is refused: a section added to the schema later
//! is closed until an administrator opens it.

use crate::sources::location::Location;
use serde::Deserialize;
use thiserror::Error;

/// Keys a fragment may set when the baked config says nothing: placement and tuning only.
/// `ecs.settings` admits only the variables a tag may set (see the README's tag contract).
pub const DEFAULT_FRAGMENT_KEYS: &[&str] = &["ecs.cluster", "ecs.attributes", "ecs.settings"];

/// Keys no fragment may ever set, whatever `fragment_keys` says: the trust rules themselves,
/// the locks, the raw variable escape hatch, proxies (a proxy sees every registry credential),
/// hooks (commands run as root on the host), the flight recorder (its location receives the
/// node's logs), `[health]` (a tag that could turn a crash into a drain could empty a cluster),
/// metrics (a renamed namespace hides a node's ABANDON from its alarms) and the host logs
/// (their group receives the node's logs).
pub const NEVER_OPEN: &[&str] = &[
    "trust",
    "ecs.locked",
    "ecs.extra_settings",
    "proxy",
    "hooks",
    "recorder",
    "health",
    "metrics",
    "logs",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustSection {
    /// Where an `ecs-boot:config` tag may point: `s3://bucket/prefix/` or `ssm:/prefix/`, each
    /// ending in `/`. Empty (the default): a fragment tag is refused.
    pub fragment_prefixes: Vec<String>,
    /// Where an `ecs-boot:registry-auth` tag (or an opened fragment key) may point. Empty: the
    /// tag is refused; credentials then come only from `[ecs] registry_auth`.
    pub registry_auth_prefixes: Vec<String>,
    /// Key paths a fragment may set (`section` or `section.key`; a section opens every key in it).
    pub fragment_keys: Vec<String>,
}

impl Default for TrustSection {
    fn default() -> Self {
        Self {
            fragment_prefixes: Vec::new(),
            registry_auth_prefixes: Vec::new(),
            fragment_keys: DEFAULT_FRAGMENT_KEYS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TrustError {
    #[error(
        "{key}: {location} is outside the allowed locations for {what} ([trust] {list} = [{allowed}])"
    )]
    NotAllowed {
        key: String,
        location: String,
        what: &'static str,
        list: &'static str,
        allowed: String,
    },
}

/// A prefix from `[trust]`: a location shape that ends in `/`, compared as a string.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.ends_with('/') {
        return Err(format!("{prefix:?} must end in '/'"));
    }
    // Parse it as a location with a dummy last segment: the same syntax rules apply.
    Location::parse(&format!("{prefix}x"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Refuses `location` (named `key`) unless it lies under one of `prefixes`. The location was
/// parsed already, so ARNs, `..`, empty segments and percent-escapes never reach this point.
pub fn check_location(
    key: &str,
    location: &Location,
    prefixes: &[String],
    what: &'static str,
    list: &'static str,
) -> Result<(), TrustError> {
    let text = location.to_string();
    if prefixes.iter().any(|p| text.starts_with(p.as_str())) {
        return Ok(());
    }
    Err(TrustError::NotAllowed {
        key: key.to_string(),
        location: text,
        what,
        list,
        allowed: prefixes
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Whether `open` (a `fragment_keys` entry) opens the key path `path`.
pub fn opens(open: &str, path: &str) -> bool {
    path == open
        || path
            .strip_prefix(open)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Checks a `fragment_keys` entry: a schema path, and nothing that reaches a never-open key.
pub fn check_fragment_key(key: &str) -> Result<(), String> {
    if NEVER_OPEN
        .iter()
        .any(|never| opens(key, never) || opens(never, key))
    {
        return Err(format!(
            "{key:?} can never be set by a fragment (never open: {})",
            NEVER_OPEN.join(", ")
        ));
    }
    let under_free_table = ["ecs.settings.", "ecs.attributes."]
        .iter()
        .any(|t| key.starts_with(t));
    if !super::schema::is_known(key) && !under_free_table {
        return Err(format!("{key:?} is not a key of the config schema"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(s: &str) -> Location {
        Location::parse(s).unwrap()
    }

    #[test]
    fn locations_must_lie_under_a_prefix() {
        let allowed = vec![
            "s3://cfg-bucket/ecs/".to_string(),
            "ssm:/ecs-boot/".to_string(),
        ];
        for ok in ["s3://cfg-bucket/ecs/web.toml", "ssm:/ecs-boot/frag/web"] {
            assert!(
                check_location("tag", &loc(ok), &allowed, "x", "y").is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "s3://cfg-bucket/ecsx/web.toml",
            "s3://cfg-bucket-evil/ecs/web.toml",
            "s3://other/ecs/web.toml",
            "ssm:/ecs-boot-evil/x",
            "ssm:/registry/creds",
        ] {
            let err = check_location("tag ecs-boot:config", &loc(bad), &allowed, "x", "y");
            assert!(err.is_err(), "{bad}");
        }
        assert!(check_location("t", &loc("ssm:/ecs-boot/x"), &[], "x", "y").is_err());
    }

    #[test]
    fn prefixes_end_in_a_slash_and_parse() {
        assert!(check_prefix("s3://bucket/ecs/").is_ok());
        assert!(check_prefix("ssm:/ecs-boot/").is_ok());
        for bad in [
            "s3://bucket/ecs",
            "ssm:/ecs-boot",
            "https://x/",
            "s3://b/../",
            "ssm:/a//",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn never_open_keys_cannot_be_opened() {
        for bad in [
            "trust",
            "trust.fragment_prefixes",
            "ecs",
            "ecs.locked",
            "proxy",
            "proxy.http_proxy",
            "ecs.extra_settings",
            "hooks",
            "hooks.pre_drain",
            "recorder",
            "recorder.location",
            "health",
            "health.on_essential_failure",
            "health.restart_grace",
            "metrics",
            "metrics.namespace",
            "metrics.enabled",
            "logs",
            "logs.group",
        ] {
            assert!(check_fragment_key(bad).is_err(), "{bad}");
        }
        for ok in [
            "ecs.cluster",
            "container",
            "drain",
            "drain.deadline",
            "ecs.settings.ECS_LOGLEVEL",
            "bootstrap",
        ] {
            assert!(check_fragment_key(ok).is_ok(), "{ok}");
        }
        assert!(check_fragment_key("nonsense.key").is_err());
    }

    #[test]
    fn metrics_and_logs_stay_out_of_fragment_keys_even_when_an_administrator_asks() {
        for key in ["metrics", "metrics.namespace", "logs", "logs.enabled"] {
            assert!(
                !DEFAULT_FRAGMENT_KEYS.iter().any(|k| opens(k, key)),
                "{key}"
            );
            let doc = format!("[trust]\nfragment_keys = [\"{key}\"]\n");
            let err = crate::config::Config::parse(&doc, "c.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains("trust.fragment_keys"), "{err}");
        }
    }

    #[test]
    fn a_key_opens_itself_and_what_is_below_it() {
        assert!(opens("ecs.settings", "ecs.settings.ECS_LOGLEVEL"));
        assert!(opens("drain", "drain"));
        assert!(!opens("ecs.settings", "ecs.settingsx"));
        assert!(!opens("ecs.settings.ECS_LOGLEVEL", "ecs.settings"));
    }
}
