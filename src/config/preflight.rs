//! What a new AMI would refuse in a fleet's tags, decided without booting anything: the same
//! checks the boot runs on tags (contract, variable trust, locks, location allowlists), so an
//! upgrade to the trust-boundary rules can be planned before the first instance fails.

use super::Config;
use super::layers;
use super::tags::{self, TagInputs};
use super::trust;
use crate::sources::location::Location;
use std::collections::BTreeMap;

/// One refusal: which tag, and why (the same wording the boot would use).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    pub tag: String,
    pub reason: String,
}

/// Every refusal the boot would hit for `raw` (an instance's or a group's tags). The boot stops
/// at the first; this lists them all.
pub fn check(config: &Config, raw: &BTreeMap<String, String>) -> Vec<Refusal> {
    let mut out = Vec::new();
    // Tags one by one, so one bad tag does not hide the others.
    let mut parsed = TagInputs::default();
    for (key, value) in raw {
        let one = BTreeMap::from([(key.clone(), value.clone())]);
        match tags::parse(&one) {
            Ok(t) => merge(&mut parsed, t),
            Err(e) => out.push(Refusal {
                tag: key.clone(),
                reason: e.to_string(),
            }),
        }
    }
    for (name, value) in &parsed.settings {
        let mut only = TagInputs {
            cluster: Some("preflight".into()),
            ..TagInputs::default()
        };
        only.settings.insert(name.clone(), value.clone());
        if let Err(e) = layers::build(config, &only, None) {
            out.push(Refusal {
                tag: format!("{}{name}", tags::SETTING_PREFIX),
                reason: e.to_string(),
            });
        }
    }
    let fences = [
        (
            tags::CONFIG,
            &parsed.config,
            &config.trust.fragment_prefixes,
            "the config fragment",
            "fragment_prefixes",
        ),
        (
            tags::REGISTRY_AUTH,
            &parsed.registry_auth,
            &config.trust.registry_auth_prefixes,
            "registry credentials",
            "registry_auth_prefixes",
        ),
    ];
    for (tag, value, prefixes, what, list) in fences {
        let Some(value) = value else { continue };
        let key = format!("tag {tag}");
        let verdict = Location::parse(value)
            .map_err(|e| format!("{key}: {e}"))
            .and_then(|loc| {
                trust::check_location(&key, &loc, prefixes, what, list).map_err(|e| e.to_string())
            });
        if let Err(reason) = verdict {
            out.push(Refusal {
                tag: tag.to_string(),
                reason,
            });
        }
    }
    if parsed.cluster.is_none() && config.ecs.cluster.is_none() && !raw.contains_key(tags::CLUSTER)
    {
        out.push(Refusal {
            tag: tags::CLUSTER.into(),
            reason:
                "missing, and the trusted config sets no [ecs] cluster: the boot would fail closed"
                    .into(),
        });
    }
    out
}

fn merge(into: &mut TagInputs, t: TagInputs) {
    into.cluster = into.cluster.take().or(t.cluster);
    into.attributes.extend(t.attributes);
    into.settings.extend(t.settings);
    into.registry_auth = into.registry_auth.take().or(t.registry_auth);
    into.config = into.config.take().or(t.config);
    into.launch_hook = into.launch_hook.take().or(t.launch_hook);
    into.terminate_hook = into.terminate_hook.take().or(t.terminate_hook);
    into.asg = into.asg.take().or(t.asg);
    into.unknown.extend(t.unknown);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tags::tests::tags;

    #[test]
    fn lists_every_refusal_not_only_the_first() {
        let config = Config::parse(
            "[trust]\nregistry_auth_prefixes = [\"ssm:/ecs/\"]\n",
            "baked",
        )
        .unwrap();
        let found = check(
            &config,
            &tags(&[
                ("ecs-boot:cluster", "web"),
                ("ecs-boot:config", "s3://cfg/web.toml"),
                ("ecs-boot:registry-auth", "ssm:/other/creds"),
                ("ecs-boot:setting:ECS_ENABLE_TASK_IAM_ROLE", "true"),
                ("ecs-boot:setting:ECS_LOGLEVEL", "debug"),
            ]),
        );
        let refused: Vec<_> = found.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(
            refused,
            [
                "ecs-boot:setting:ECS_ENABLE_TASK_IAM_ROLE",
                "ecs-boot:config",
                "ecs-boot:registry-auth",
            ],
            "{found:#?}"
        );
    }

    #[test]
    fn allowed_tags_pass() {
        let config = Config::parse(
            "[trust]\nregistry_auth_prefixes = [\"ssm:/ecs/\"]\nfragment_prefixes = [\"s3://cfg/ecs/\"]\n",
            "baked",
        )
        .unwrap();
        let found = check(
            &config,
            &tags(&[
                ("ecs-boot:cluster", "web"),
                ("ecs-boot:config", "s3://cfg/ecs/web.toml"),
                ("ecs-boot:registry-auth", "ssm:/ecs/creds"),
                ("ecs-boot:setting:ECS_LOGLEVEL", "debug"),
                ("Name", "web"),
            ]),
        );
        assert!(found.is_empty(), "{found:#?}");
        let found = check(&config, &tags(&[("Name", "web")]));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].tag, "ecs-boot:cluster");
    }
}
