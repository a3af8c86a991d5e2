//! The tag contract: which instance tags ecs-boot reads and what each may change. Tags only place
//! and name the instance; credentials and security-relevant settings never come from them.

use std::collections::BTreeMap;
use thiserror::Error;

pub const CLUSTER: &str = "ecs-boot:cluster";
pub const ATTRIBUTE_PREFIX: &str = "ecs-boot:attribute:";
pub const SETTING_PREFIX: &str = "ecs-boot:setting:";
pub const REGISTRY_AUTH: &str = "ecs-boot:registry-auth";
pub const CONFIG: &str = "ecs-boot:config";
pub const LAUNCH_HOOK: &str = "ecs-boot:launch-hook";
pub const TERMINATE_HOOK: &str = "ecs-boot:terminate-hook";
pub const ASG: &str = "ecs-boot:asg";
/// Set by Auto Scaling on every instance it launches.
pub const AWS_ASG: &str = "aws:autoscaling:groupName";

const KNOWN: &[&str] = &[
    CLUSTER,
    REGISTRY_AUTH,
    CONFIG,
    LAUNCH_HOOK,
    TERMINATE_HOOK,
    ASG,
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TagError {
    #[error("tag {tag}: {problem}")]
    Invalid { tag: String, problem: String },
}

/// What the instance's tags say, parsed and checked but not yet merged with the baked config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagInputs {
    pub cluster: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// `ecs-boot:setting:ECS_NAME` values, checked later against the variable allowlist.
    pub settings: BTreeMap<String, String>,
    pub registry_auth: Option<String>,
    pub config: Option<String>,
    pub launch_hook: Option<String>,
    pub terminate_hook: Option<String>,
    pub asg: Option<String>,
    /// `ecs-boot:*` tags this version does not know (a typo, or a newer contract): warned about.
    pub unknown: Vec<String>,
}

/// ECS cluster names: 1-255 letters, digits, hyphens and underscores.
pub fn check_cluster_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 255
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{:?} is not an ECS cluster name (1-255 letters, digits, '-', '_')",
            truncate(name)
        ));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn invalid(tag: &str, problem: impl Into<String>) -> TagError {
    TagError::Invalid {
        tag: tag.to_string(),
        problem: problem.into(),
    }
}

/// Parses every `ecs-boot:*` tag; other tags are ignored. Values are checked for line safety here
/// so no tag can ever inject an ecs.config line.
pub fn parse(tags: &BTreeMap<String, String>) -> Result<TagInputs, TagError> {
    let mut out = TagInputs::default();
    for (key, value) in tags {
        if key == AWS_ASG {
            out.asg.get_or_insert_with(|| value.clone());
            continue;
        }
        if !key.starts_with("ecs-boot:") {
            continue;
        }
        if value.chars().any(char::is_control) {
            return Err(invalid(
                key,
                "value contains a control character (newline, CR, NUL, ...)",
            ));
        }
        if let Some(name) = key.strip_prefix(ATTRIBUTE_PREFIX) {
            check_attribute(key, name, value)?;
            out.attributes.insert(name.to_string(), value.clone());
        } else if let Some(name) = key.strip_prefix(SETTING_PREFIX) {
            out.settings.insert(name.to_string(), value.clone());
        } else {
            let slot = match key.as_str() {
                CLUSTER => {
                    check_cluster_name(value).map_err(|p| invalid(key, p))?;
                    &mut out.cluster
                }
                REGISTRY_AUTH => &mut out.registry_auth,
                CONFIG => &mut out.config,
                LAUNCH_HOOK => &mut out.launch_hook,
                TERMINATE_HOOK => &mut out.terminate_hook,
                ASG => {
                    out.asg = None; // our own tag wins over aws:autoscaling:groupName
                    &mut out.asg
                }
                _ => {
                    out.unknown.push(key.clone());
                    continue;
                }
            };
            if value.is_empty() {
                return Err(invalid(key, "empty value"));
            }
            *slot = Some(value.clone());
        }
    }
    debug_assert!(KNOWN.iter().all(|k| k.starts_with("ecs-boot:")));
    Ok(out)
}

/// ECS's own attribute rules (see `ecs_config::attribute`), so the error comes at boot, naming the
/// tag, not from the agent at registration.
fn check_attribute(tag: &str, name: &str, value: &str) -> Result<(), TagError> {
    use crate::ecs_config::attribute;
    attribute::check_name(name).map_err(|p| invalid(tag, p))?;
    attribute::check_value(value).map_err(|p| invalid(tag, p))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tag map from literal pairs (the preflight's tests use it too).
    pub(crate) fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_contract() {
        let t = parse(&tags(&[
            ("ecs-boot:cluster", "prod-web"),
            ("ecs-boot:attribute:stack", "blue"),
            ("ecs-boot:setting:ECS_LOGLEVEL", "debug"),
            ("ecs-boot:registry-auth", "s3://b-1/k"),
            ("aws:autoscaling:groupName", "web-asg"),
            ("Name", "ignored"),
        ]))
        .unwrap();
        assert_eq!(t.cluster.as_deref(), Some("prod-web"));
        assert_eq!(t.attributes["stack"], "blue");
        assert_eq!(t.settings["ECS_LOGLEVEL"], "debug");
        assert_eq!(t.asg.as_deref(), Some("web-asg"));
        assert!(t.unknown.is_empty());
    }

    #[test]
    fn own_asg_tag_wins_over_the_aws_one() {
        let t = parse(&tags(&[
            ("aws:autoscaling:groupName", "a"),
            ("ecs-boot:asg", "b"),
        ]))
        .unwrap();
        assert_eq!(t.asg.as_deref(), Some("b"));
    }

    #[test]
    fn control_characters_never_pass() {
        for (k, v) in [
            ("ecs-boot:cluster", "a\nECS_ENGINE_AUTH_DATA=x"),
            ("ecs-boot:attribute:a", "b\r"),
            ("ecs-boot:setting:ECS_LOGLEVEL", "info\0"),
        ] {
            let err = parse(&tags(&[(k, v)])).unwrap_err();
            assert!(err.to_string().contains(k), "{err}");
        }
    }

    #[test]
    fn bad_cluster_names_are_refused_with_the_tag_named() {
        let err = parse(&tags(&[("ecs-boot:cluster", "\"prod\"")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("tag ecs-boot:cluster:"), "{err}");
    }

    #[test]
    fn attributes_follow_ecs_rules_and_errors_name_the_tag() {
        for (k, v) in [
            ("ecs-boot:attribute:a@b", "x"),
            ("ecs-boot:attribute:a:b", "x"),
            ("ecs-boot:attribute:stäck", "x"),
            ("ecs-boot:attribute:ecs-boot.drained", "true"),
            ("ecs-boot:attribute:ecs-boot.ready", "true"),
            ("ecs-boot:attribute:stack", "blü"),
            ("ecs-boot:attribute:stack", "a,b"),
            ("ecs-boot:attribute:stack", " blue"),
        ] {
            let err = parse(&tags(&[(k, v)])).unwrap_err().to_string();
            assert!(err.starts_with(&format!("tag {k}: ")), "{err}");
        }
        let t = parse(&tags(&[("ecs-boot:attribute:team/web", "ops@corp:/x y")])).unwrap();
        assert_eq!(t.attributes["team/web"], "ops@corp:/x y");
    }

    #[test]
    fn unknown_ecs_boot_tags_are_reported() {
        let t = parse(&tags(&[("ecs-boot:clustr", "x")])).unwrap();
        assert_eq!(t.unknown, vec!["ecs-boot:clustr".to_string()]);
    }
}
