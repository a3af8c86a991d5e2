//! What marks a container as ours and what reconcile does with it. Pure: the labels, the config
//! hash and the create/keep/replace/start/remove decision, each with unit tests.

use crate::config::ContainerSpec;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Set on every container ecs-boot creates; its value is the scope (`true` on an instance).
pub const MANAGED: &str = "io.ecs-boot.managed";
/// sha256 of the container's configuration as it affects Docker (see [`config_hash`]).
pub const CONFIG_HASH: &str = "io.ecs-boot.config-hash";
/// The `[[container]]` name, so a container is found even if someone renamed it.
pub const NAME: &str = "io.ecs-boot.name";

/// The scope on a real instance. Another scope (tests, two agents on one engine) only ever sees
/// its own containers.
pub const DEFAULT_SCOPE: &str = "true";

/// Bumped when the mapping from spec to Docker changes, so every container is recreated once.
const HASH_VERSION: &str = "ecs-boot/containers/v1";

/// Fields that change how ecs-boot treats the container, not the container itself: changing
/// them must not restart a running metrics agent.
const NOT_HASHED: &[&str] = &["essential", "pull", "min_uptime"];

/// sha256 (hex) of the spec's Docker-relevant fields. Maps are BTreeMaps, so the JSON is
/// canonical: equal configs hash equal whatever their order in the TOML.
pub fn config_hash(spec: &ContainerSpec) -> String {
    let mut value = serde_json::to_value(spec).expect("a container spec serializes");
    if let serde_json::Value::Object(map) = &mut value {
        for key in NOT_HASHED {
            map.remove(*key);
        }
    }
    let mut h = Sha256::new();
    h.update(HASH_VERSION.as_bytes());
    h.update(b"\n");
    h.update(value.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// The labels a container gets: the user's, then ours (which win: a user label cannot make a
/// container look unmanaged or stale).
pub fn labels(spec: &ContainerSpec, scope: &str, hash: &str) -> BTreeMap<String, String> {
    let mut labels = spec.labels.clone();
    labels.insert(MANAGED.into(), scope.into());
    labels.insert(CONFIG_HASH.into(), hash.into());
    labels.insert(NAME.into(), spec.name.clone());
    labels
}

/// Docker's view of a container, reduced to what the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineState {
    Running,
    Restarting,
    Paused,
    /// Created, exited: `start` brings it back.
    Stopped,
    /// Dead, being removed, or a state this version does not know: only a new container helps.
    Broken,
}

impl EngineState {
    pub fn from_docker(status: &str) -> EngineState {
        match status {
            "running" => EngineState::Running,
            "restarting" => EngineState::Restarting,
            "paused" => EngineState::Paused,
            "created" | "exited" => EngineState::Stopped,
            _ => EngineState::Broken,
        }
    }
}

/// One container found on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    /// The config-hash label (None if someone stripped it).
    pub hash: Option<String>,
    pub state: EngineState,
    /// The image id it was created from (`sha256:...`).
    pub image_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Create,
    /// Same config and up: untouched, same container id.
    Keep,
    Replace(ReplaceWhy),
    Start,
    Unpause,
    /// Ours, but no longer configured.
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceWhy {
    ConfigChanged,
    /// Pull policy `always` fetched an image newer than the one the container runs.
    ImageChanged,
    Broken,
}

impl Decision {
    /// The word shown in status (`ContainerRecord::action`).
    pub fn action(self) -> &'static str {
        match self {
            Decision::Create => "created",
            Decision::Keep => "unchanged",
            Decision::Replace(_) => "replaced",
            Decision::Start => "started",
            Decision::Unpause => "unpaused",
            Decision::Remove => "removed",
        }
    }
}

/// What to do with one name. `desired` is the configured hash (None: not configured),
/// `observed` the container of ours with that name, `image_changed` whether the image the spec
/// names now differs from the one the container was created from. None: nothing to do.
pub fn decide(
    desired: Option<&str>,
    observed: Option<&Observed>,
    image_changed: bool,
) -> Option<Decision> {
    let Some(want) = desired else {
        return observed.map(|_| Decision::Remove);
    };
    let Some(have) = observed else {
        return Some(Decision::Create);
    };
    if have.hash.as_deref() != Some(want) {
        return Some(Decision::Replace(ReplaceWhy::ConfigChanged));
    }
    if image_changed {
        return Some(Decision::Replace(ReplaceWhy::ImageChanged));
    }
    Some(match have.state {
        EngineState::Running | EngineState::Restarting => Decision::Keep,
        EngineState::Paused => Decision::Unpause,
        EngineState::Stopped => Decision::Start,
        EngineState::Broken => Decision::Replace(ReplaceWhy::Broken),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_spec as spec;

    fn seen(hash: &str, state: EngineState) -> Observed {
        Observed {
            id: "abc".into(),
            hash: Some(hash.into()),
            state,
            image_id: "sha256:1".into(),
        }
    }

    #[test]
    fn hash_follows_docker_relevant_fields_only() {
        let base = config_hash(&spec(""));
        assert_eq!(base.len(), 64);
        assert_eq!(base, config_hash(&spec("")));
        assert_ne!(base, config_hash(&spec("env = { A = \"1\" }")));
        assert_ne!(base, config_hash(&spec("memory_mib = 64")));
        assert_ne!(base, config_hash(&spec("network_mode = \"bridge\"")));
        // How ecs-boot treats the container is not the container: no restart for these.
        assert_eq!(
            base,
            config_hash(&spec(
                "essential = true\npull = \"always\"\nmin_uptime = \"10s\""
            ))
        );
    }

    #[test]
    fn hash_ignores_map_order_in_the_toml() {
        let a = config_hash(&spec("env = { A = \"1\", B = \"2\" }"));
        let b = config_hash(&spec("env = { B = \"2\", A = \"1\" }"));
        assert_eq!(a, b);
    }

    #[test]
    fn our_labels_win_over_the_users() {
        let s = spec("labels = { \"io.ecs-boot.managed\" = \"false\", team = \"obs\" }");
        let l = labels(&s, DEFAULT_SCOPE, "h");
        assert_eq!(l[MANAGED], "true");
        assert_eq!(l[CONFIG_HASH], "h");
        assert_eq!(l[NAME], "cw");
        assert_eq!(l["team"], "obs");
    }

    #[test]
    fn decisions() {
        use Decision::*;
        use EngineState::*;
        assert_eq!(decide(Some("h"), None, false), Some(Create));
        assert_eq!(
            decide(Some("h"), Some(&seen("h", Running)), false),
            Some(Keep)
        );
        assert_eq!(
            decide(Some("h"), Some(&seen("h", Restarting)), false),
            Some(Keep)
        );
        assert_eq!(
            decide(Some("h"), Some(&seen("old", Running)), false),
            Some(Replace(ReplaceWhy::ConfigChanged))
        );
        assert_eq!(
            decide(Some("h"), Some(&seen("h", Running)), true),
            Some(Replace(ReplaceWhy::ImageChanged))
        );
        assert_eq!(
            decide(Some("h"), Some(&seen("h", Stopped)), false),
            Some(Start)
        );
        assert_eq!(
            decide(Some("h"), Some(&seen("h", Paused)), false),
            Some(Unpause)
        );
        assert_eq!(
            decide(Some("h"), Some(&seen("h", Broken)), false),
            Some(Replace(ReplaceWhy::Broken))
        );
        assert_eq!(decide(None, Some(&seen("h", Running)), false), Some(Remove));
        assert_eq!(decide(None, None, false), None);
        // A stripped hash label is a changed config: replace rather than trust it.
        let stripped = Observed {
            hash: None,
            ..seen("h", Running)
        };
        assert_eq!(
            decide(Some("h"), Some(&stripped), false),
            Some(Replace(ReplaceWhy::ConfigChanged))
        );
    }

    #[test]
    fn docker_states_map_to_what_can_be_done() {
        assert_eq!(EngineState::from_docker("running"), EngineState::Running);
        assert_eq!(EngineState::from_docker("exited"), EngineState::Stopped);
        assert_eq!(EngineState::from_docker("created"), EngineState::Stopped);
        assert_eq!(EngineState::from_docker("dead"), EngineState::Broken);
        assert_eq!(
            EngineState::from_docker("something-new"),
            EngineState::Broken
        );
    }
}
