//! The config phase: identity and tags from IMDS, registry credentials from S3 or SSM, and
//! ecs.config on disk. `run` and `render` share this code path, so `render` shows exactly what
//! `run` would write.
//!
//! The phase reaches IMDS, S3 and SSM only through the traits in ports.rs, so each step is
//! unit-tested against an in-memory instance (fake.rs, tests.rs).

#[cfg(test)]
pub mod fake;
mod ports;
#[cfg(test)]
mod tests;

pub use ports::{Connect, ConnectAws, Fetch, InstanceMetadata};

use crate::config::Config;
use crate::config::layers::{self, AgentEnv};
use crate::config::tags::{self, TagInputs};
use crate::ecs_config::{self, Rendered};
use crate::error::{Error, Result};
use crate::sources::aws::{Aws, Fetched};
use crate::sources::imds::Identity;
use crate::sources::location::Location;
use crate::sources::registry_auth::{self, RegistryAuth};
use crate::status::state::{EcsConfigRecord, Instance, PhaseStatus, StateStore};
use crate::util::paths::Paths;
use crate::util::retry::{self, Backoff, Poll, WaitError};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// Records phases when `run` drives the boot; `render` passes `None` and records nothing.
pub type Recorder<'a> = Option<&'a StateStore>;

/// Runs `work` as phase `name`: timed, logged, and its error recorded with a hint.
pub async fn phase<T>(
    rec: Recorder<'_>,
    name: &str,
    work: impl Future<Output = Result<(T, Option<String>)>>,
) -> Result<T> {
    if let Some(s) = rec {
        s.begin(name);
    }
    let out = work.await;
    if let Some(s) = rec {
        match &out {
            Ok((_, detail)) => s.end(name, PhaseStatus::Ok, detail.clone(), None),
            Err(e) => s.end(
                name,
                PhaseStatus::Failed,
                None,
                Some((e.to_string(), e.hint())),
            ),
        }
    }
    out.map(|(v, _)| v)
}

/// Everything the config phase learned, kept for the later phases. `A`: the clients for the
/// instance's region (`Aws`, or the tests' in-memory ones).
pub struct Prepared<A = Aws> {
    /// The baked config with the `ecs-boot:config` fragment merged over it, if the tag names one.
    pub config: Config,
    pub identity: Identity,
    pub tags: TagInputs,
    pub env: AgentEnv,
    pub auth: Option<RegistryAuth>,
    pub auth_location: Option<String>,
    pub rendered: Rendered,
    pub aws: A,
}

/// What the boot learned before it failed: enough to find and ABANDON the launch hook.
pub struct Known<A = Aws> {
    pub identity: Option<Identity>,
    pub aws: Option<A>,
    pub tags: Option<TagInputs>,
}

impl<A> Default for Known<A> {
    fn default() -> Self {
        Known {
            identity: None,
            aws: None,
            tags: None,
        }
    }
}

/// The config phase: identity from `imds`, clients for its region from `connect`, tags (waited
/// for), the fragment a tag names, registry credentials, and ecs.config rendered (not written).
/// What it learned on the way is left in `known`, also when it fails.
pub async fn prepare<C: Connect>(
    config: &Config,
    paths: &Paths,
    imds: &impl InstanceMetadata,
    connect: &C,
    rec: Recorder<'_>,
    known: &mut Known<C::Clients>,
) -> Result<Prepared<C::Clients>> {
    let (identity, trusted) = phase(rec, "identity", async {
        let id = imds.identity().await?;
        // The trusted layers' ${region}, ${account_id} and ${instance_id} become real values.
        let trusted = config.with_identity(&id)?;
        let detail = format!(
            "{} {} {}",
            id.instance_id, id.availability_zone, id.instance_type
        );
        Ok(((id, trusted), Some(detail)))
    })
    .await?;
    let config = &trusted;
    if let Some(s) = rec {
        s.update(|st| {
            st.instance = Some(Instance {
                instance_id: identity.instance_id.clone(),
                region: identity.region.clone(),
                availability_zone: identity.availability_zone.clone(),
                instance_type: identity.instance_type.clone(),
            })
        });
    }
    let aws = connect.connect(&identity.region).await;
    known.identity = Some(identity.clone());
    known.aws = Some(aws.clone());

    let (_, tags) = phase(rec, "tags", async {
        let raw = wait_for_tags(imds, &required_tags(config), config.tags.wait).await?;
        let parsed = tags::parse(&raw)?;
        let detail = format!(
            "{} tags, {} ecs-boot tags",
            raw.len(),
            raw.keys().filter(|k| k.starts_with("ecs-boot:")).count()
        );
        Ok(((raw, parsed), Some(detail)))
    })
    .await?;
    known.tags = Some(tags.clone());
    if let Some(s) = rec {
        for key in &tags.unknown {
            s.warn(format!(
                "tag {key} is not part of the ecs-boot tag contract and was ignored"
            ));
        }
    }

    let config = &match tags
        .config
        .as_ref()
        .filter(|_| layers::locks(config).allows("config"))
    {
        None => config.clone(),
        Some(raw) => {
            phase(rec, "config-fragment", async {
                let merged = fetch_fragment(&aws, config, raw).await?;
                Ok((
                    merged,
                    Some(format!("merged {raw} over the trusted config")),
                ))
            })
            .await?
        }
    };
    let auth_location = layers::resolve_registry_auth(config, &tags);
    let auth = phase(rec, "credentials", async {
        let Some(raw) = &auth_location else {
            return Ok((None, Some("no registry credentials configured".into())));
        };
        // A location from a tag, or from a fragment a tag chose, must lie under an allowed
        // prefix; the trusted layers' own `[ecs] registry_auth` is trusted as it is.
        let (key, fenced) = if tags.registry_auth.as_deref() == Some(raw.as_str()) {
            (format!("tag {}", tags::REGISTRY_AUTH), true)
        } else if trusted.ecs.registry_auth.as_deref() != Some(raw.as_str()) {
            (
                "[ecs] registry_auth from the config fragment".to_string(),
                true,
            )
        } else {
            ("[ecs] registry_auth".to_string(), false)
        };
        let fence = fenced.then_some(config.trust.registry_auth_prefixes.as_slice());
        let auth = fetch_registry_auth(&aws, raw, key, fence).await?;
        let n = auth.logins.len();
        let detail = format!(
            "{n} {} from {raw}",
            if n == 1 { "registry" } else { "registries" }
        );
        Ok((Some(auth), Some(detail)))
    })
    .await?;

    let (env, rendered) = phase(rec, "ecs-config-render", async {
        let env = layers::build(config, &tags, auth.as_ref())?;
        // Never `.ok()`: an unreadable file would be rewritten without user data's lines.
        let existing = ecs_config::read_existing(&paths.ecs_config())?;
        let rendered = ecs_config::render(&env, existing.as_deref());
        let detail = format!("{} managed variables", env.vars.len());
        Ok(((env, rendered), Some(detail)))
    })
    .await?;
    Ok(Prepared {
        config: config.clone(),
        identity,
        tags,
        env,
        auth,
        auth_location,
        rendered,
        aws,
    })
}

/// Closes the gate: a new run decides afresh, so until it has written ecs.config again `gate`
/// must not pass on an earlier run's marker (a restarted ecs-boot that fails now fails closed).
pub fn close_gate(paths: &Paths) {
    let _ = std::fs::remove_file(paths.ready_marker());
}

/// Opens the gate: the per-boot ready marker `gate` checks against ecs.config. Not written while
/// the instance is warmed, so a warming instance's ECS agent never registers.
pub fn open_gate<A>(prepared: &Prepared<A>, paths: &Paths) -> Result<()> {
    let sha = ecs_config::sha256_hex(prepared.rendered.text.as_bytes());
    ecs_config::write_atomic(&paths.ready_marker(), format!("{sha}\n").as_bytes())?;
    Ok(())
}

/// Writes ecs.config and records what was written. An open gate (a reload) stays open for the
/// old file and the new one while the file is replaced; `open_gate` then narrows it to the new.
pub async fn write<A>(prepared: &Prepared<A>, paths: &Paths, rec: &StateStore) -> Result<()> {
    phase(Some(rec), "ecs-config-write", async {
        let text = prepared.rendered.text.as_bytes();
        if let Ok(open) = std::fs::read_to_string(paths.ready_marker()) {
            let both = format!("{}\n{}\n", open.trim(), ecs_config::sha256_hex(text));
            ecs_config::write_atomic(&paths.ready_marker(), both.as_bytes())?;
        }
        let outcome = ecs_config::write_atomic(&paths.ecs_config(), text)?;
        let sha = ecs_config::sha256_hex(text);
        rec.update(|s| {
            s.ecs_config = Some(EcsConfigRecord {
                path: "/etc/ecs/ecs.config".into(),
                sha256: sha.clone(),
                cluster: prepared.env.cluster().to_string(),
                keys: prepared.env.vars.keys().cloned().collect(),
                registry_auth: prepared.auth_location.clone(),
                registries: prepared
                    .auth
                    .as_ref()
                    .map(RegistryAuth::registries)
                    .unwrap_or_default(),
                sources: prepared.env.sources_in(&prepared.rendered),
            })
        });
        for key in &prepared.rendered.overridden {
            rec.warn(format!(
                "ecs.config had its own {key} line (user data?); ecs-boot's value replaces it"
            ));
        }
        if let Some(conflict) =
            ecs_config::checkpoint_conflict(&paths.agent_data_dir(), prepared.env.cluster())
        {
            rec.warn(conflict);
        }
        let what = match outcome {
            ecs_config::WriteOutcome::Written => "written",
            ecs_config::WriteOutcome::Unchanged => "unchanged",
        };
        Ok((
            (),
            Some(format!(
                "{what}, cluster {}, sha256 {}",
                prepared.env.cluster(),
                &sha[..12]
            )),
        ))
    })
    .await
}

/// Tags the boot cannot go on without: the cluster unless baked, plus `[tags] required`.
fn required_tags(config: &Config) -> Vec<String> {
    let mut required = config.tags.required.clone();
    if config.ecs.cluster.is_none() {
        required.insert(0, tags::CLUSTER.to_string());
    }
    required
}

/// Reads tags until every required one is present: Auto Scaling propagates tags shortly after
/// launch, so they can be missing for the first seconds of a boot.
async fn wait_for_tags(
    imds: &impl InstanceMetadata,
    required: &[String],
    wait: Duration,
) -> Result<BTreeMap<String, String>> {
    /// What the last answered read showed. Kept here rather than in the poll's reason string:
    /// the attempt cut short by the deadline replaces that reason with a timeout note.
    enum Seen {
        Disabled,
        Missing(Vec<String>),
    }
    let seen = std::sync::Mutex::new(None::<Seen>);
    let result = retry::poll_until(
        wait,
        Backoff::new(Duration::from_millis(250), Duration::from_secs(5)),
        || async {
            match imds.tags().await {
                Err(e) => Poll::Fatal(Error::from(e)),
                Ok(None) if required.is_empty() => Poll::Ready(BTreeMap::new()),
                Ok(None) => {
                    *seen.lock().expect("lock") = Some(Seen::Disabled);
                    Poll::Pending("tags disabled".into())
                }
                Ok(Some(tags)) => {
                    let missing: Vec<_> = required
                        .iter()
                        .filter(|k| !tags.contains_key(*k))
                        .cloned()
                        .collect();
                    if missing.is_empty() {
                        Poll::Ready(tags)
                    } else {
                        let reason = missing.join(",");
                        *seen.lock().expect("lock") = Some(Seen::Missing(missing));
                        Poll::Pending(reason)
                    }
                }
            }
        },
    )
    .await;
    match result {
        Ok(tags) => Ok(tags),
        Err(WaitError::Fatal(e)) => Err(e),
        Err(WaitError::Deadline { waited, .. }) => match seen.into_inner().expect("lock") {
            Some(Seen::Disabled) => Err(Error::TagsDisabled {
                missing: required.to_vec(),
            }),
            Some(Seen::Missing(missing)) => Err(Error::TagsMissing { missing, waited }),
            // No read answered in time: say so, rather than blame tags nobody could read.
            None => Err(Error::Imds(crate::sources::imds::ImdsFailure {
                path: "/latest/meta-data/tags/instance".into(),
                message: format!(
                    "no answer within the [tags] wait of {}s (required: {})",
                    waited.as_secs(),
                    required.join(", ")
                ),
                status: None,
            })),
        },
    }
}

/// Parses `raw` (named `key` in errors), checks it against the allowed prefixes when `fence`
/// is given (before any request is made), and fetches what it points to, at most 64 KiB.
async fn fetch_location(
    aws: &impl Fetch,
    raw: &str,
    key: String,
    what: &'static str,
    fence: Option<(&[String], &'static str)>,
) -> Result<(Location, Fetched)> {
    let location = Location::parse(raw).map_err(|source| Error::Location {
        key: key.clone(),
        source,
    })?;
    if let Some((prefixes, list)) = fence {
        crate::config::trust::check_location(&key, &location, prefixes, what, list)?;
    }
    let fetched = aws
        .fetch(&location, registry_auth::MAX_BYTES)
        .await
        .map_err(|source| Error::Fetch { what, source })?;
    Ok((location, fetched))
}

/// The fragment a tag names, merged over the trusted config (which decides what it may change).
async fn fetch_fragment(aws: &impl Fetch, baked: &Config, raw: &str) -> Result<Config> {
    let key = format!("tag {}", tags::CONFIG);
    let fence = Some((
        baked.trust.fragment_prefixes.as_slice(),
        "fragment_prefixes",
    ));
    let (location, fetched) = fetch_location(aws, raw, key, "the config fragment", fence).await?;
    let text = String::from_utf8(fetched.bytes)
        .map_err(|_| Error::Other(format!("config fragment {location} is not UTF-8 text")))?;
    Ok(baked.merge_fragment(&text, &location.to_string())?)
}

/// Registry credentials at `raw` (named `key` in errors); an SSM parameter must be a SecureString.
/// `fence`: the allowed prefixes, when the location came from the untrusted channel.
pub async fn fetch_registry_auth(
    aws: &impl Fetch,
    raw: &str,
    key: String,
    fence: Option<&[String]>,
) -> Result<RegistryAuth> {
    let fence = fence.map(|p| (p, "registry_auth_prefixes"));
    let (location, fetched) = fetch_location(aws, raw, key, "registry credentials", fence).await?;
    if matches!(location, Location::Ssm { .. }) && !fetched.secure {
        return Err(Error::NotSecure {
            location: location.to_string(),
            kind: "String",
        });
    }
    Ok(RegistryAuth::parse(&fetched.bytes, &location.to_string())?)
}
