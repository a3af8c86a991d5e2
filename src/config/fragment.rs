//! A config fragment named by the `ecs-boot:config` tag (an S3 object or SSM parameter), merged
//! over the baked config: configuration changes without a new AMI. A fragment is chosen by a tag,
//! so it obeys the tag rules: it may not unlock keys, and its agent settings are checked as if
//! they came from tags.

use super::{Config, ConfigError};
use crate::config::layers::{self, Source};

const LOCK_FOR_KEY: &[(&str, &str)] = &[
    ("cluster", "cluster"),
    ("registry_auth", "registry-auth"),
    ("attributes", "attributes"),
];

impl Config {
    /// The baked config with `fragment` (TOML text from `origin`) merged over it.
    pub fn merge_fragment(&self, fragment: &str, origin: &str) -> Result<Config, ConfigError> {
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            problem,
        };
        let table: toml::Table = toml::from_str(fragment).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: super::one_line(&e.to_string()),
        })?;
        let locks = layers::locks(self);
        if let Some(toml::Value::Table(ecs)) = table.get("ecs") {
            if ecs.contains_key("locked") {
                return Err(invalid(
                    "ecs.locked",
                    "only the baked config may lock keys".into(),
                ));
            }
            for (key, lock) in LOCK_FOR_KEY {
                if ecs.contains_key(*key) && !locks.allows(lock) {
                    return Err(invalid(
                        &format!("ecs.{key}"),
                        format!("locked by the baked config ([ecs] locked has {lock:?})"),
                    ));
                }
            }
            if let Some(toml::Value::Table(settings)) = ecs.get("settings") {
                for (name, value) in settings {
                    let value = value.as_str().ok_or_else(|| {
                        invalid(&format!("ecs.settings.{name}"), "must be a string".into())
                    })?;
                    layers::check_setting(name, value, Source::Tag)
                        .map_err(|e| invalid(&format!("ecs.settings.{name}"), e.to_string()))?;
                    if !locks.allows(name) {
                        return Err(invalid(
                            &format!("ecs.settings.{name}"),
                            "locked by the baked config".into(),
                        ));
                    }
                }
            }
        }
        let mut merged = self.raw.clone();
        merge_tables(&mut merged, table);
        Config::from_table(merged, &format!("baked config + {origin}"))
    }
}

/// Tables merge key by key; `[[container]]` entries merge by name (a fragment replaces a baked
/// container of the same name and adds new ones); any other value is replaced.
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (Some(toml::Value::Array(b)), toml::Value::Array(o)) if key == "container" => {
                for item in o {
                    let name = item
                        .get("name")
                        .and_then(|n| n.as_str())
                        .map(str::to_string);
                    match b.iter_mut().find(|c| {
                        name.is_some() && c.get("name").and_then(|n| n.as_str()) == name.as_deref()
                    }) {
                        Some(existing) => *existing = item,
                        None => b.push(item),
                    }
                }
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baked() -> Config {
        Config::parse("[ecs]\ncluster = \"baked\"\nlocked = [\"registry-auth\", \"ECS_LOGLEVEL\"]\n[ecs.settings]\nECS_ENABLE_TASK_IAM_ROLE = \"true\"\n[[container]]\nname = \"logs\"\nimage = \"a:1\"\n", "baked").unwrap()
    }

    #[test]
    fn fragment_merges_over_the_baked_config() {
        let merged = baked()
            .merge_fragment("[ecs]\ncluster = \"frag\"\n[ecs.settings]\nECS_CONTAINER_STOP_TIMEOUT = \"2m\"\n[[container]]\nname = \"logs\"\nimage = \"a:2\"\n[[container]]\nname = \"metrics\"\nimage = \"m:1\"\n[drain]\ndeadline = \"5m\"\n", "s3://b/f.toml")
            .unwrap();
        assert_eq!(merged.ecs.cluster.as_deref(), Some("frag"));
        assert_eq!(merged.ecs.settings["ECS_ENABLE_TASK_IAM_ROLE"], "true");
        assert_eq!(merged.ecs.settings["ECS_CONTAINER_STOP_TIMEOUT"], "2m");
        let images: Vec<_> = merged
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.image.as_str()))
            .collect();
        assert_eq!(images, vec![("logs", "a:2"), ("metrics", "m:1")]);
        assert_eq!(merged.drain.deadline.as_secs(), 300);
    }

    #[test]
    fn fragment_obeys_the_tag_rules() {
        for (text, key) in [
            ("[ecs]\nlocked = []\n", "ecs.locked"),
            (
                "[ecs]\nregistry_auth = \"s3://evil/creds\"\n",
                "ecs.registry_auth",
            ),
            (
                "[ecs.settings]\nECS_ENABLE_TASK_IAM_ROLE = \"false\"\n",
                "ecs.settings.ECS_ENABLE_TASK_IAM_ROLE",
            ),
            (
                "[ecs.settings]\nECS_LOGLEVEL = \"debug\"\n",
                "ecs.settings.ECS_LOGLEVEL",
            ),
        ] {
            let err = baked()
                .merge_fragment(text, "ssm:/frag")
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains("ssm:/frag"), "{err}");
        }
    }

    #[test]
    fn invalid_merged_result_names_both_sources() {
        let err = baked()
            .merge_fragment("[tags]\nwait = \"never\"\n", "s3://b/f.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://b/f.toml"), "{err}");
    }
}
