//! Decides the ECS agent variables ecs-boot manages, from the baked config, the instance tags and
//! the registry credentials. Pure: no I/O, so every rule here has a unit test.

use crate::config::Config;
use crate::config::tags::TagInputs;
pub use crate::ecs_config::AgentEnv;
use crate::ecs_config::vars::{self, Trust, VarError};
use crate::sources::registry_auth::{RegistryAuth, Secret};
use thiserror::Error;

/// Where a setting came from, which decides what it may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Baked,
    Tag,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvError {
    #[error(
        "no ECS cluster: tag the instance with ecs-boot:cluster or set [ecs] cluster in the baked config (ecs-boot never falls back to the default cluster)"
    )]
    NoCluster,
    #[error("tag ecs-boot:setting:{name}: {source}")]
    TagSetting { name: String, source: VarError },
    #[error("{what}: {source}")]
    Invalid { what: String, source: VarError },
}

/// Checks an `[ecs] extra_settings` entry: any variable name (the agent may know more than
/// ecs-boot), type-checked where ecs-boot knows the variable, never one ecs-boot writes itself.
pub fn check_extra_setting(name: &str, value: &str) -> Result<(), VarError> {
    let name_ok = name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(VarError::BadValue {
            name: name.chars().take(64).collect(),
            expected: "a variable name of A-Z, 0-9 and _",
            problem: "not a variable name".into(),
        });
    }
    match vars::lookup(name) {
        Some(_) => check_setting(name, value, Source::Baked),
        None => vars::check_line_safe(name, value),
    }
}

/// Checks that `name` may be set to `value` from `source`.
pub fn check_setting(name: &str, value: &str, source: Source) -> Result<(), VarError> {
    let var = vars::lookup(name).ok_or_else(|| VarError::Unknown {
        name: name.to_string(),
    })?;
    match (var.trust, source) {
        (Trust::Managed, _) => {
            return Err(VarError::Managed {
                name: name.to_string(),
                how: vars::managed_how(name),
            });
        }
        (Trust::Baked, Source::Tag) => {
            return Err(VarError::NotFromTags {
                name: name.to_string(),
            });
        }
        _ => {}
    }
    vars::check_value(var, value)
}

/// What a tag may override, given the baked `[ecs] locked` list.
pub struct Locks<'a>(&'a [String]);

impl Locks<'_> {
    pub fn allows(&self, key: &str) -> bool {
        !self.0.iter().any(|k| k == key)
    }
}

pub fn locks(config: &Config) -> Locks<'_> {
    Locks(&config.ecs.locked)
}

/// The cluster: the tag unless locked, else the baked default. Never `default` by omission.
pub fn resolve_cluster(config: &Config, tags: &TagInputs) -> Result<String, EnvError> {
    let from_tag = tags
        .cluster
        .clone()
        .filter(|_| locks(config).allows("cluster"));
    from_tag
        .or_else(|| config.ecs.cluster.clone())
        .ok_or(EnvError::NoCluster)
}

/// Where registry credentials live: the tag unless locked, else the baked default.
pub fn resolve_registry_auth(config: &Config, tags: &TagInputs) -> Option<String> {
    let from_tag = tags
        .registry_auth
        .clone()
        .filter(|_| locks(config).allows("registry-auth"));
    from_tag.or_else(|| config.ecs.registry_auth.clone())
}

/// Builds the managed variables. `auth` is the parsed registry credentials, if any.
pub fn build(
    config: &Config,
    tags: &TagInputs,
    auth: Option<&RegistryAuth>,
) -> Result<AgentEnv, EnvError> {
    let locks = locks(config);
    let mut env = AgentEnv::default();
    env.vars
        .insert("ECS_CLUSTER".into(), resolve_cluster(config, tags)?);

    let mut settings = config.ecs.settings.clone();
    for (name, value) in &config.ecs.settings {
        check_setting(name, value, Source::Baked).map_err(|source| EnvError::Invalid {
            what: format!("[ecs.settings] {name}"),
            source,
        })?;
    }
    for (name, value) in &tags.settings {
        check_setting(name, value, Source::Tag).map_err(|source| EnvError::TagSetting {
            name: name.clone(),
            source,
        })?;
        if !locks.allows(name) {
            return Err(EnvError::TagSetting {
                name: name.clone(),
                source: VarError::Locked { name: name.clone() },
            });
        }
        settings.insert(name.clone(), value.clone());
    }

    // The trusted layers' escape hatch (checked at load): an administrator's value wins over a tag.
    settings.extend(config.ecs.extra_settings.clone());

    // System containers' memory is reserved from ECS on top of whatever the settings reserve.
    let containers = config.system_container_memory_mib();
    if containers > 0 {
        let reserved = reserve_for_containers(settings.get(RESERVED_MEMORY), containers)
            .map_err(|problem| {
                let source = VarError::BadValue {
                    name: RESERVED_MEMORY.into(),
                    expected: "at most 65535 MiB together with the system containers' memory_mib (the agent reads it as a 16-bit number)",
                    problem,
                };
                if tags.settings.contains_key(RESERVED_MEMORY) {
                    EnvError::TagSetting {
                        name: RESERVED_MEMORY.into(),
                        source,
                    }
                } else {
                    EnvError::Invalid {
                        what: "[ecs.settings] ECS_RESERVED_MEMORY plus [[container]] memory_mib"
                            .into(),
                        source,
                    }
                }
            })?;
        settings.insert(RESERVED_MEMORY.into(), reserved.to_string());
    }
    env.vars.extend(settings);
    for (name, value) in crate::util::proxy::agent_proxy_vars(&config.proxy) {
        // A proxy URL with user:password@ is a credential: masked in render, never logged.
        if crate::util::proxy::has_userinfo(&value) {
            env.secret.insert(name.to_string());
        }
        env.vars.insert(name.to_string(), value);
    }

    let mut attributes = config.ecs.attributes.clone();
    if locks.allows("attributes") {
        attributes.extend(tags.attributes.clone());
    }
    if !attributes.is_empty() {
        let json = serde_json::to_string(&attributes).expect("a map of strings always serializes");
        env.vars.insert("ECS_INSTANCE_ATTRIBUTES".into(), json);
    }

    if let Some(auth) = auth {
        env.vars
            .insert("ECS_ENGINE_AUTH_TYPE".into(), "dockercfg".into());
        env.vars.insert(
            "ECS_ENGINE_AUTH_DATA".into(),
            secret_value(auth.render_dockercfg()),
        );
        env.secret.insert("ECS_ENGINE_AUTH_DATA".into());
    }

    // Final guard: whatever the path, no value may break out of its line.
    for (name, value) in &env.vars {
        vars::check_line_safe(name, value).map_err(|source| EnvError::Invalid {
            what: name.clone(),
            source,
        })?;
    }
    Ok(env)
}

const RESERVED_MEMORY: &str = "ECS_RESERVED_MEMORY";

/// The reservation with the system containers' memory added, refused past what the agent's 16-bit
/// parse can hold (it would silently read 0 and reserve nothing).
fn reserve_for_containers(setting: Option<&String>, containers_mib: u64) -> Result<u16, String> {
    let base = match setting {
        None => 0,
        Some(v) => vars::parse_int(v, u16::MAX.into())?,
    };
    base.checked_add(containers_mib)
        .and_then(|sum| u16::try_from(sum).ok())
        .ok_or_else(|| {
            format!("{base} MiB set plus {containers_mib} MiB of system containers is over 65535")
        })
}

fn secret_value(s: Secret) -> String {
    s.expose().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tags;

    fn tag_inputs(pairs: &[(&str, &str)]) -> TagInputs {
        tags::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn config(text: &str) -> Config {
        Config::parse(text, "test").unwrap()
    }

    #[test]
    fn missing_cluster_never_means_default() {
        assert_eq!(
            build(&Config::default(), &TagInputs::default(), None),
            Err(EnvError::NoCluster)
        );
    }

    #[test]
    fn tags_win_over_baked_defaults_unless_locked() {
        let t = tag_inputs(&[
            ("ecs-boot:cluster", "from-tag"),
            ("ecs-boot:setting:ECS_LOGLEVEL", "debug"),
        ]);
        let env = build(
            &config("[ecs]\ncluster = \"baked\"\n[ecs.settings]\nECS_LOGLEVEL = \"info\"\n"),
            &t,
            None,
        )
        .unwrap();
        assert_eq!(env.cluster(), "from-tag");
        assert_eq!(env.vars["ECS_LOGLEVEL"], "debug");

        let locked = config("[ecs]\ncluster = \"baked\"\nlocked = [\"cluster\"]\n");
        assert_eq!(build(&locked, &t, None).unwrap().cluster(), "baked");
        let locked = config("[ecs]\nlocked = [\"ECS_LOGLEVEL\"]\n");
        let err = build(&locked, &t, None).unwrap_err().to_string();
        assert!(
            err.contains("ECS_LOGLEVEL") && err.contains("locked"),
            "{err}"
        );
    }

    #[test]
    fn security_settings_never_come_from_tags() {
        for name in [
            "ECS_DISABLE_PRIVILEGED",
            "ECS_ENABLE_TASK_IAM_ROLE",
            "ECS_DATADIR",
            "ECS_SELINUX_CAPABLE",
            "ECS_AWSVPC_BLOCK_IMDS",
        ] {
            let t = tag_inputs(&[
                ("ecs-boot:cluster", "c"),
                (&format!("ecs-boot:setting:{name}"), "false"),
            ]);
            let err = build(&Config::default(), &t, None).unwrap_err();
            assert!(
                matches!(
                    err,
                    EnvError::TagSetting {
                        source: VarError::NotFromTags { .. },
                        ..
                    }
                ),
                "{name}: {err}"
            );
        }
        for name in [
            "ECS_ENGINE_AUTH_DATA",
            "ECS_ENGINE_AUTH_TYPE",
            "ECS_CLUSTER",
            "ECS_INSTANCE_ATTRIBUTES",
        ] {
            let t = tag_inputs(&[
                ("ecs-boot:cluster", "c"),
                (&format!("ecs-boot:setting:{name}"), "x"),
            ]);
            assert!(
                matches!(
                    build(&Config::default(), &t, None),
                    Err(EnvError::TagSetting {
                        source: VarError::Managed { .. },
                        ..
                    })
                ),
                "{name}"
            );
        }
        // The baked config may set them.
        let env = build(
            &config(
                "[ecs]\ncluster = \"c\"\n[ecs.settings]\nECS_ENABLE_TASK_IAM_ROLE = \"true\"\n",
            ),
            &TagInputs::default(),
            None,
        )
        .unwrap();
        assert_eq!(env.vars["ECS_ENABLE_TASK_IAM_ROLE"], "true");
    }

    #[test]
    fn unknown_settings_are_named() {
        let t = tag_inputs(&[
            ("ecs-boot:cluster", "c"),
            ("ecs-boot:setting:ECS_MADE_UP", "1"),
        ]);
        let err = build(&Config::default(), &t, None).unwrap_err().to_string();
        assert!(err.contains("ECS_MADE_UP"), "{err}");
    }

    #[test]
    fn attributes_merge_into_one_json_object() {
        let t = tag_inputs(&[
            ("ecs-boot:cluster", "c"),
            ("ecs-boot:attribute:stack", "blue"),
        ]);
        let env = build(
            &config("[ecs.attributes]\nteam = \"core\"\nstack = \"green\"\n"),
            &t,
            None,
        )
        .unwrap();
        assert_eq!(
            env.vars["ECS_INSTANCE_ATTRIBUTES"],
            r#"{"stack":"blue","team":"core"}"#
        );
    }

    #[test]
    fn system_container_memory_is_reserved_from_ecs() {
        let c = config(
            "[ecs]\ncluster = \"c\"\n[ecs.settings]\nECS_RESERVED_MEMORY = \"100\"\n[[container]]\nname = \"a\"\nimage = \"i\"\nmemory_mib = 128\n[[container]]\nname = \"b\"\nimage = \"i\"\nmemory_mib = 64\n",
        );
        assert_eq!(
            build(&c, &TagInputs::default(), None).unwrap().vars["ECS_RESERVED_MEMORY"],
            "292"
        );
    }

    #[test]
    fn reserved_memory_plus_containers_stays_within_the_agents_16_bits() {
        let containers = "[[container]]\nname = \"a\"\nimage = \"i\"\nmemory_mib = 128\n";
        let c = config(&format!("[ecs]\ncluster = \"c\"\n{containers}"));
        let t = tag_inputs(&[
            ("ecs-boot:cluster", "c"),
            ("ecs-boot:setting:ECS_RESERVED_MEMORY", "65500"),
        ]);
        let err = build(&c, &t, None).unwrap_err().to_string();
        assert!(
            err.contains("ecs-boot:setting:ECS_RESERVED_MEMORY") && err.contains("65535"),
            "{err}"
        );
        let t = tag_inputs(&[
            ("ecs-boot:cluster", "c"),
            ("ecs-boot:setting:ECS_RESERVED_MEMORY", "65407"),
        ]);
        assert_eq!(
            build(&c, &t, None).unwrap().vars["ECS_RESERVED_MEMORY"],
            "65535"
        );
        // Containers alone past the limit, or past u64: an error, never a wrap.
        let huge = "[[container]]\nname = \"a\"\nimage = \"i\"\nmemory_mib = 9223372036854775807\n[[container]]\nname = \"b\"\nimage = \"i\"\nmemory_mib = 9223372036854775807\n";
        let c = config(&format!("[ecs]\ncluster = \"c\"\n{huge}"));
        let err = build(&c, &TagInputs::default(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory_mib"), "{err}");
    }

    #[test]
    fn credentials_are_marked_secret() {
        let auth = RegistryAuth::parse(br#"{"username":"u","password":"p"}"#, "x").unwrap();
        let env = build(
            &config("[ecs]\ncluster = \"c\"\n"),
            &TagInputs::default(),
            Some(&auth),
        )
        .unwrap();
        assert_eq!(env.vars["ECS_ENGINE_AUTH_TYPE"], "dockercfg");
        assert!(env.secret.contains("ECS_ENGINE_AUTH_DATA"));
    }
}
