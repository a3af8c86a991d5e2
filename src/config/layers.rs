//! Decides the ECS agent variables ecs-boot manages, from the baked config, the instance tags and
//! the registry credentials, and where each came from (the baked file, a config.d drop-in, the
//! fragment, a tag, or ecs-boot itself). Pure: no I/O, so every rule here has a unit test.

use crate::config::Config;
use crate::config::tags::TagInputs;
pub use crate::ecs_config::AgentEnv;
use crate::ecs_config::VarSource;
use crate::ecs_config::vars::{self, Trust, VarError};
use crate::sources::registry_auth::{RegistryAuth, Secret};
use std::collections::BTreeMap;
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
    cluster_with_source(config, tags).map(|(cluster, _)| cluster)
}

fn cluster_with_source(config: &Config, tags: &TagInputs) -> Result<(String, VarSource), EnvError> {
    let from_tag = tags
        .cluster
        .clone()
        .filter(|_| locks(config).allows("cluster"));
    match from_tag {
        Some(c) => Ok((c, VarSource::Tag(crate::config::tags::CLUSTER.into()))),
        None => config
            .ecs
            .cluster
            .clone()
            .map(|c| (c, set_by(config, &["ecs", "cluster"])))
            .ok_or(EnvError::NoCluster),
    }
}

/// Where registry credentials live: the tag unless locked, else the baked default.
pub fn resolve_registry_auth(config: &Config, tags: &TagInputs) -> Option<String> {
    registry_auth_with_source(config, tags).map(|(location, _)| location)
}

fn registry_auth_with_source(config: &Config, tags: &TagInputs) -> Option<(String, VarSource)> {
    let from_tag = tags
        .registry_auth
        .clone()
        .filter(|_| locks(config).allows("registry-auth"));
    match from_tag {
        Some(l) => Some((l, VarSource::Tag(crate::config::tags::REGISTRY_AUTH.into()))),
        None => config
            .ecs
            .registry_auth
            .clone()
            .map(|l| (l, set_by(config, &["ecs", "registry_auth"]))),
    }
}

/// The layer that set the key at `path` last, as the merge applies them: the fragment over the
/// config.d drop-ins (in name order) over the baked file.
fn set_by(config: &Config, path: &[&str]) -> VarSource {
    let has = |table: &toml::Table| {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut t = table;
        for p in parents {
            match t.get(*p).and_then(toml::Value::as_table) {
                Some(inner) => t = inner,
                None => return false,
            }
        }
        t.contains_key(*last)
    };
    if let Some(f) = config.fragment.as_ref().filter(|f| has(&f.table)) {
        return VarSource::Fragment(f.origin.clone());
    }
    match config.layers.iter().rev().find(|l| has(&l.table)) {
        Some(l) if l.drop_in => VarSource::ConfigD(l.origin.clone()),
        Some(l) => VarSource::Baked(l.origin.clone()),
        // A config made in code, not read from layers (tests): all it has is its origin.
        None => VarSource::Baked(config.origin.clone()),
    }
}

/// Builds the managed variables. `auth` is the parsed registry credentials, if any.
pub fn build(
    config: &Config,
    tags: &TagInputs,
    auth: Option<&RegistryAuth>,
) -> Result<AgentEnv, EnvError> {
    let locks = locks(config);
    let mut env = AgentEnv::default();
    let (cluster, cluster_source) = cluster_with_source(config, tags)?;
    env.set("ECS_CLUSTER", cluster, cluster_source);

    let mut settings: BTreeMap<String, (String, VarSource)> = BTreeMap::new();
    for (name, value) in &config.ecs.settings {
        check_setting(name, value, Source::Baked).map_err(|source| EnvError::Invalid {
            what: format!("[ecs.settings] {name}"),
            source,
        })?;
        let source = set_by(config, &["ecs", "settings", name]);
        settings.insert(name.clone(), (value.clone(), source));
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
        let source = VarSource::Tag(format!("{}{name}", crate::config::tags::SETTING_PREFIX));
        settings.insert(name.clone(), (value.clone(), source));
    }

    // The trusted layers' escape hatch (checked at load): an administrator's value wins over a tag.
    for (name, value) in &config.ecs.extra_settings {
        let source = set_by(config, &["ecs", "extra_settings", name]);
        settings.insert(name.clone(), (value.clone(), source));
    }

    // System containers' memory is reserved from ECS on top of whatever the settings reserve.
    let containers = config.system_container_memory_mib();
    if containers > 0 {
        let base = settings.get(RESERVED_MEMORY);
        let reserved = reserve_for_containers(base.map(|(v, _)| v), containers)
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
        let source = VarSource::EcsBoot(match base {
            Some((_, from)) => format!("[[container]] memory_mib added to {from}"),
            None => "[[container]] memory_mib".into(),
        });
        settings.insert(RESERVED_MEMORY.into(), (reserved.to_string(), source));
    }
    for (name, (value, source)) in settings {
        env.set(name, value, source);
    }
    for (name, value) in config.proxy.vars() {
        // A proxy URL with user:password@ is a credential: masked in render, never logged.
        if crate::util::proxy::has_userinfo(&value) {
            env.secret.insert(name.to_string());
        }
        let source = match name {
            "HTTP_PROXY" => set_by(config, &["proxy", "http_proxy"]),
            "HTTPS_PROXY" => set_by(config, &["proxy", "https_proxy"]),
            _ => VarSource::EcsBoot("[proxy] no_proxy plus the local endpoints".into()),
        };
        env.set(name, value, source);
    }

    let mut attributes: BTreeMap<String, (String, VarSource)> = config
        .ecs
        .attributes
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v.clone(), set_by(config, &["ecs", "attributes", k])),
            )
        })
        .collect();
    if locks.allows("attributes") {
        for (k, v) in &tags.attributes {
            let source = VarSource::Tag(format!("{}{k}", crate::config::tags::ATTRIBUTE_PREFIX));
            attributes.insert(k.clone(), (v.clone(), source));
        }
    }
    // Always present: the node registers not ready (src/lifecycle/readiness.rs sets it true).
    // No tag or config can set an `ecs-boot.` name (attribute::check_name), so it is never
    // overridden here.
    let mut values: BTreeMap<&str, &str> = attributes
        .iter()
        .map(|(k, (v, _))| (k.as_str(), v.as_str()))
        .collect();
    values.insert(crate::ecs_config::attribute::READY, "false");
    let json = serde_json::to_string(&values).expect("a map of strings always serializes");
    let source = if attributes.is_empty() {
        VarSource::EcsBoot("readiness for placement (ecs-boot.ready)".into())
    } else {
        VarSource::merged(attributes.into_values().map(|(_, s)| s).collect())
    };
    env.set("ECS_INSTANCE_ATTRIBUTES", json, source);

    if let Some(auth) = auth {
        let source = VarSource::EcsBoot(match registry_auth_with_source(config, tags) {
            Some((location, from)) => format!("registry credentials {location}, named by {from}"),
            None => "registry credentials".into(),
        });
        env.set("ECS_ENGINE_AUTH_TYPE", "dockercfg".into(), source.clone());
        env.set(
            "ECS_ENGINE_AUTH_DATA",
            secret_value(auth.render_dockercfg()),
            source,
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
            r#"{"ecs-boot.ready":"false","stack":"blue","team":"core"}"#
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

    /// The baked file and one config.d drop-in on disk, read as `run` reads them.
    fn on_disk(baked: &str, drop_in: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, baked).unwrap();
        std::fs::create_dir(dir.path().join("config.d")).unwrap();
        std::fs::write(dir.path().join("config.d/10-group.toml"), drop_in).unwrap();
        let config = Config::load(&path).unwrap();
        (dir, config)
    }

    fn source(env: &AgentEnv, name: &str) -> VarSource {
        env.sources
            .get(name)
            .unwrap_or_else(|| panic!("no source for {name}"))
            .clone()
    }

    #[test]
    fn every_variable_names_the_layer_that_set_it() {
        let (dir, trusted) = on_disk(
            "[ecs]\ncluster = \"baked\"\n[ecs.settings]\nECS_ENABLE_TASK_IAM_ROLE = \"true\"\nECS_CONTAINER_STOP_TIMEOUT = \"30s\"\nECS_IMAGE_CLEANUP_INTERVAL = \"1h\"\n[ecs.attributes]\nteam = \"core\"\n",
            "[ecs.settings]\nECS_CONTAINER_STOP_TIMEOUT = \"1m\"\n[ecs.extra_settings]\nECS_NOT_YET_KNOWN = \"1\"\n[proxy]\nhttps_proxy = \"http://proxy.internal:3128\"\n",
        );
        let config = trusted
            .merge_fragment(
                "[ecs.settings]\nECS_IMAGE_CLEANUP_INTERVAL = \"2h\"\n",
                "s3://cfg/f.toml",
            )
            .unwrap();
        let t = tag_inputs(&[
            ("ecs-boot:cluster", "from-tag"),
            ("ecs-boot:setting:ECS_LOGLEVEL", "debug"),
            ("ecs-boot:attribute:stack", "blue"),
        ]);
        let env = build(&config, &t, None).unwrap();
        let baked = dir.path().join("config.toml").display().to_string();
        let drop_in = dir
            .path()
            .join("config.d/10-group.toml")
            .display()
            .to_string();
        assert_eq!(
            source(&env, "ECS_CLUSTER"),
            VarSource::Tag("ecs-boot:cluster".into())
        );
        assert_eq!(
            source(&env, "ECS_ENABLE_TASK_IAM_ROLE"),
            VarSource::Baked(baked.clone())
        );
        assert_eq!(
            source(&env, "ECS_CONTAINER_STOP_TIMEOUT"),
            VarSource::ConfigD(drop_in.clone()),
            "the drop-in overrides the baked file"
        );
        assert_eq!(
            source(&env, "ECS_NOT_YET_KNOWN"),
            VarSource::ConfigD(drop_in.clone())
        );
        assert_eq!(
            source(&env, "HTTPS_PROXY"),
            VarSource::ConfigD(drop_in.clone())
        );
        assert!(matches!(source(&env, "NO_PROXY"), VarSource::EcsBoot(_)));
        assert_eq!(
            source(&env, "ECS_IMAGE_CLEANUP_INTERVAL"),
            VarSource::Fragment("s3://cfg/f.toml".into())
        );
        assert_eq!(
            source(&env, "ECS_LOGLEVEL"),
            VarSource::Tag("ecs-boot:setting:ECS_LOGLEVEL".into())
        );
        assert_eq!(
            source(&env, "ECS_INSTANCE_ATTRIBUTES").to_string(),
            format!("ecs-boot (merged from baked config {baked}, tag ecs-boot:attribute:stack)")
        );
        assert_eq!(
            env.sources.keys().collect::<Vec<_>>(),
            env.vars.keys().collect::<Vec<_>>(),
            "one source per variable"
        );
    }

    #[test]
    fn the_cluster_names_whichever_layer_won() {
        let (dir, trusted) = on_disk(
            "[ecs]\ncluster = \"baked\"\nlocked = [\"registry-auth\"]\n",
            "[ecs]\ncluster = \"group\"\n",
        );
        let drop_in = dir
            .path()
            .join("config.d/10-group.toml")
            .display()
            .to_string();
        let env = build(&trusted, &TagInputs::default(), None).unwrap();
        assert_eq!(
            (env.cluster(), source(&env, "ECS_CLUSTER")),
            ("group", VarSource::ConfigD(drop_in))
        );
        let fragment = trusted
            .merge_fragment("[ecs]\ncluster = \"frag\"\n", "ssm:/cfg/frag")
            .unwrap();
        let env = build(&fragment, &TagInputs::default(), None).unwrap();
        assert_eq!(
            source(&env, "ECS_CLUSTER"),
            VarSource::Fragment("ssm:/cfg/frag".into())
        );
        // A locked cluster ignores the tag, and says so by naming the file.
        let (dir, locked) = on_disk("[ecs]\ncluster = \"baked\"\nlocked = [\"cluster\"]\n", "");
        let t = tag_inputs(&[("ecs-boot:cluster", "from-tag")]);
        let env = build(&locked, &t, None).unwrap();
        assert_eq!(
            source(&env, "ECS_CLUSTER"),
            VarSource::Baked(dir.path().join("config.toml").display().to_string())
        );
    }

    #[test]
    fn ecs_boots_own_values_say_what_they_were_made_from_never_the_secret() {
        let auth = RegistryAuth::parse(br#"{"username":"u","password":"hunter2"}"#, "x").unwrap();
        let c = config(
            "[ecs]\ncluster = \"c\"\n[ecs.settings]\nECS_RESERVED_MEMORY = \"100\"\n[[container]]\nname = \"a\"\nimage = \"i\"\nmemory_mib = 128\n",
        );
        let t = tag_inputs(&[("ecs-boot:registry-auth", "ssm:/creds/ecr")]);
        let env = build(&c, &t, Some(&auth)).unwrap();
        for name in ["ECS_ENGINE_AUTH_TYPE", "ECS_ENGINE_AUTH_DATA"] {
            assert_eq!(
                source(&env, name).to_string(),
                "ecs-boot (registry credentials ssm:/creds/ecr, named by tag ecs-boot:registry-auth)"
            );
        }
        assert_eq!(
            source(&env, "ECS_RESERVED_MEMORY").to_string(),
            "ecs-boot ([[container]] memory_mib added to baked config test)"
        );
        let secret = &env.vars["ECS_ENGINE_AUTH_DATA"];
        for s in env.sources.values() {
            let s = s.to_string();
            assert!(
                !s.contains("hunter2") && !s.contains(secret.as_str()),
                "{s}"
            );
        }
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
