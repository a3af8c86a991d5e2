//! System containers on the local Docker engine: every `[[container]]` created, kept, replaced or
//! started so the engine matches the config, and containers we created but no longer configure
//! removed. Containers are ours by label (see `spec_hash`); nothing else on the engine (ECS
//! tasks, the ECS agent) is ever touched.

pub mod bootstrap;
pub(crate) mod engine;
pub mod liveness;
mod pull;
mod spec_hash;
mod up;
pub mod watch;

use crate::config::{Config, ContainerSpec};
use crate::error::{Error, Result};
use crate::sources::aws::Aws;
use crate::sources::registry_auth::RegistryAuth;
use crate::status::state::ContainerRecord;
use crate::util::paths::Paths;
use bollard::Docker;
use futures_util::future::join_all;
use std::time::Duration;

pub use engine::EngineAddress;
pub use spec_hash::DEFAULT_SCOPE;
use spec_hash::{Decision, Observed};

/// How long `reconcile` looks for an engine when no container is configured (only to remove
/// containers an earlier config left): a node without system containers must not wait on Docker.
const CLEANUP_ENGINE_WAIT: Duration = Duration::from_secs(2);

/// Which Docker engine holds the system containers, and the label value that marks ours there
/// ([`DEFAULT_SCOPE`] on an instance; tests use their own so they never meet another's).
#[derive(Debug, Clone)]
pub struct Scope {
    pub engine: EngineAddress,
    pub label: String,
}

impl Scope {
    /// The engine of the host under `--root` (or `DOCKER_HOST`).
    pub fn new(paths: &Paths, label: impl Into<String>) -> Scope {
        Scope {
            engine: EngineAddress::new(paths),
            label: label.into(),
        }
    }
}

/// Everything reconcile did: a record per configured (or removed) container, and the essential
/// containers that cannot run, each as "name (image): cause".
#[derive(Debug, Default)]
pub struct Report {
    pub records: Vec<ContainerRecord>,
    pub essential_failures: Vec<String>,
}

impl Report {
    /// The boot's error when any essential container cannot run, naming each one.
    pub fn error(&self) -> Option<Error> {
        let n = self.essential_failures.len();
        (n > 0).then(|| {
            Error::Containers(format!(
                "essential system container{} cannot run: {}",
                if n == 1 { "" } else { "s" },
                self.essential_failures.join("; ")
            ))
        })
    }
}

/// Brings the engine's containers labelled as ours to the configured state, within `scope`.
pub async fn reconcile_report(
    config: &Config,
    auth: Option<&RegistryAuth>,
    aws: &Aws,
    scope: &Scope,
) -> Report {
    let wait = if config.containers.is_empty() {
        if !scope.engine.may_exist() {
            return Report::default();
        }
        CLEANUP_ENGINE_WAIT.min(config.docker.engine_wait)
    } else {
        config.docker.engine_wait
    };
    let found = match engine::connect(&scope.engine, wait).await {
        Ok(docker) => engine::list_ours(&docker, &scope.label)
            .await
            .map(|ours| (docker, ours)),
        Err(e) => Err(e),
    };
    let (docker, ours) = match found {
        Ok(found) => found,
        Err(e) if config.containers.is_empty() => {
            tracing::info!(error = %e, "no Docker engine; no system containers configured");
            return Report::default();
        }
        Err(e) => return engine_unavailable(&config.containers, &e),
    };

    let configured = config
        .containers
        .iter()
        .map(|spec| converge(&docker, spec, ours.get(&spec.name), auth, aws, &scope.label));
    let mut report = Report::default();
    for (record, failure) in join_all(configured).await {
        if let Some(cause) = failure {
            let line = format!("{} ({}): {cause}", record.name, record.image);
            if record.essential {
                tracing::error!(container = %record.name, image = %record.image, error = %cause, "essential system container cannot run");
                report.essential_failures.push(line);
            } else {
                tracing::warn!(container = %record.name, image = %record.image, error = %cause, "system container cannot run; the boot goes on");
            }
        }
        report.records.push(record);
    }

    let stale = ours
        .iter()
        .filter(|(name, _)| !config.containers.iter().any(|s| &s.name == *name));
    let removals = stale.map(|(name, observed)| remove_stale(&docker, name, observed));
    report.records.extend(join_all(removals).await);
    report
}

/// Whether an engine could answer: `DOCKER_HOST` set, or the default socket present.
fn engine_unavailable(specs: &[ContainerSpec], cause: &str) -> Report {
    let mut report = Report::default();
    for spec in specs {
        if spec.essential {
            report
                .essential_failures
                .push(format!("{} ({}): {cause}", spec.name, spec.image));
        }
        report.records.push(ContainerRecord {
            name: spec.name.clone(),
            image: spec.image.clone(),
            state: "unknown".into(),
            essential: spec.essential,
            action: "none".into(),
            last_error: Some(cause.to_string()),
            ..Default::default()
        });
    }
    tracing::error!(error = %cause, "Docker engine unavailable: no system container can run");
    report
}

/// One configured container to its configured state. Returns its record and, if it cannot run,
/// why.
async fn converge(
    docker: &Docker,
    spec: &ContainerSpec,
    observed: Option<&Observed>,
    auth: Option<&RegistryAuth>,
    aws: &Aws,
    scope: &str,
) -> (ContainerRecord, Option<String>) {
    let mut record = ContainerRecord {
        name: spec.name.clone(),
        image: spec.image.clone(),
        essential: spec.essential,
        state: "missing".into(),
        action: "none".into(),
        ..Default::default()
    };
    if let Some(o) = observed {
        record.id = o.id.clone();
    }
    match converge_inner(docker, spec, observed, auth, aws, scope, &mut record).await {
        Ok(warning) => {
            record.last_error = warning;
            refresh(docker, &mut record).await;
            (record, None)
        }
        Err(cause) => {
            refresh(docker, &mut record).await;
            record.last_error = Some(cause.clone());
            (record, Some(cause))
        }
    }
}

/// Ok carries a warning for status (a failed `always` pull that fell back to the local image).
async fn converge_inner(
    docker: &Docker,
    spec: &ContainerSpec,
    observed: Option<&Observed>,
    auth: Option<&RegistryAuth>,
    aws: &Aws,
    scope: &str,
    record: &mut ContainerRecord,
) -> Result<Option<String>, String> {
    let hash = spec_hash::config_hash(spec);
    let first = spec_hash::decide(Some(&hash), observed, false).expect("configured");
    let needs_image = matches!(first, Decision::Create | Decision::Replace(_))
        || spec.pull == crate::config::PullPolicy::Always;
    let mut warning = None;
    let mut image_changed = false;
    if needs_image {
        let ready = pull::ensure(docker, spec, auth, aws).await?;
        warning = ready.warning;
        image_changed = observed.is_some_and(|o| o.image_id != ready.image.id);
    }
    let decision = spec_hash::decide(Some(&hash), observed, image_changed).expect("configured");
    record.action = decision.action().into();
    tracing::info!(container = %spec.name, image = %spec.image, action = decision.action(), "reconciling system container");
    let id = match (decision, observed) {
        (Decision::Keep, Some(o)) => o.id.clone(),
        (Decision::Start, Some(o)) => {
            docker
                .start_container(&o.id, None)
                .await
                .map_err(|e| format!("starting: {}", engine::one_line(&e)))?;
            o.id.clone()
        }
        (Decision::Unpause, Some(o)) => {
            docker
                .unpause_container(&o.id)
                .await
                .map_err(|e| format!("unpausing: {}", engine::one_line(&e)))?;
            o.id.clone()
        }
        (Decision::Replace(why), Some(o)) => {
            tracing::info!(container = %spec.name, old = %o.id, reason = ?why, "replacing system container");
            engine::stop_and_remove(docker, &o.id)
                .await
                .map_err(|e| format!("replacing the old container {}: {e}", short(&o.id)))?;
            record.id.clear();
            create_and_start(docker, spec, scope, &hash, record).await?
        }
        _ => create_and_start(docker, spec, scope, &hash, record).await?,
    };
    record.id = id.clone();
    if spec.essential {
        up::wait(docker, &id, spec.min_uptime).await?;
    }
    Ok(warning)
}

async fn create_and_start(
    docker: &Docker,
    spec: &ContainerSpec,
    scope: &str,
    hash: &str,
    record: &mut ContainerRecord,
) -> Result<String, String> {
    let image = pull::ImageRef::parse(&spec.image).full();
    let body = engine::create_body(spec, &image, spec_hash::labels(spec, scope, hash));
    let id = match engine::create(docker, &spec.name, body).await {
        Ok(id) => id,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => {
            return Err(format!(
                "a container named {} exists that this ecs-boot did not create; it is left alone: remove or rename it, or rename this [[container]]",
                spec.name
            ));
        }
        Err(e) => return Err(format!("creating: {}", engine::one_line(&e))),
    };
    record.id = id.clone();
    docker
        .start_container(&id, None)
        .await
        .map_err(|e| format!("starting: {}", engine::one_line(&e)))?;
    Ok(id)
}

/// Fills state, restart count and digest from the engine (best effort: status is a view).
async fn refresh(docker: &Docker, record: &mut ContainerRecord) {
    if record.id.is_empty() {
        return;
    }
    let Ok(c) = engine::inspect(docker, &record.id).await else {
        return;
    };
    let sample = up::Sample::from_inspect(&c);
    record.state = sample.status;
    record.restart_count = sample.restart_count;
    if let Some(image_id) = c.image.as_deref() {
        record.digest = Some(pull::describe_image(docker, image_id, &record.image).await);
    }
}

async fn remove_stale(docker: &Docker, name: &str, observed: &Observed) -> ContainerRecord {
    tracing::info!(container = %name, id = %observed.id, "removing a system container no longer configured");
    let result = engine::stop_and_remove(docker, &observed.id).await;
    if let Err(e) = &result {
        tracing::warn!(container = %name, error = %e, "cannot remove a system container no longer configured");
    }
    ContainerRecord {
        name: name.to_string(),
        id: observed.id.clone(),
        image: String::new(),
        state: if result.is_ok() { "removed" } else { "unknown" }.into(),
        action: "removed".into(),
        last_error: result.err(),
        ..Default::default()
    }
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

pub async fn stop_all_in(config: &Config, scope: &Scope) -> Result<()> {
    if config.containers.is_empty() && !scope.engine.may_exist() {
        return Ok(());
    }
    let docker = engine::connect(&scope.engine, config.docker.engine_wait)
        .await
        .map_err(Error::Containers)?;
    let ours = engine::list_ours(&docker, &scope.label)
        .await
        .map_err(Error::Containers)?;
    let stops = ours.iter().map(|(name, o)| {
        let docker = &docker;
        async move {
            tracing::info!(container = %name, "stopping system container");
            engine::stop(docker, &o.id)
                .await
                .map_err(|e| format!("{name}: {e}"))
        }
    });
    let failures: Vec<String> = join_all(stops)
        .await
        .into_iter()
        .filter_map(|r| r.err())
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Containers(format!(
            "cannot stop system containers: {}",
            failures.join("; ")
        )))
    }
}
