//! The Docker engine through bollard: connecting (honouring `DOCKER_HOST`) with a deadline, and
//! the translation of a `[[container]]` spec into Docker's create request (pure, tested).

use crate::config::ContainerSpec;
use crate::util::paths::Paths;
use crate::util::retry::{Backoff, Poll, WaitError, poll_until};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, HostConfigLogConfig, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, StopContainerOptions,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use super::spec_hash::{self, EngineState, Observed};

/// Long enough for a large image pull over a slow link; our own deadlines bound every wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a container gets to stop on SIGTERM before SIGKILL (log shippers flush here).
pub const STOP_GRACE_SECS: i32 = 20;

/// Where the Docker engine listens: `DOCKER_HOST` when it is set (any address bollard knows),
/// else the socket under `--root`, like every other host path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineAddress {
    Host(String),
    Socket(PathBuf),
}

impl EngineAddress {
    pub fn new(paths: &Paths) -> EngineAddress {
        EngineAddress::choose(std::env::var("DOCKER_HOST").ok(), paths)
    }

    fn choose(docker_host: Option<String>, paths: &Paths) -> EngineAddress {
        match docker_host.filter(|h| !h.is_empty()) {
            Some(host) => EngineAddress::Host(host),
            None => EngineAddress::Socket(paths.docker_socket()),
        }
    }

    /// Whether an engine may answer there at all: a named host may, a socket once dockerd has
    /// made it. A node without either is not worth waiting on.
    pub fn may_exist(&self) -> bool {
        match self {
            EngineAddress::Host(_) => true,
            EngineAddress::Socket(path) => path.exists(),
        }
    }

    fn client(&self) -> Result<Docker, bollard::errors::Error> {
        match self {
            EngineAddress::Host(host) => Docker::connect_with_host(host),
            EngineAddress::Socket(path) => Docker::connect_with_socket(
                &path.to_string_lossy(),
                REQUEST_TIMEOUT.as_secs(),
                bollard::API_DEFAULT_VERSION,
            ),
        }
    }
}

impl std::fmt::Display for EngineAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineAddress::Host(host) => f.write_str(host),
            EngineAddress::Socket(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// Connects and negotiates the API version (the engine on an instance may be older than
/// bollard's default API). Waits up to `deadline` for the engine to answer.
pub async fn connect(address: &EngineAddress, deadline: Duration) -> Result<Docker, String> {
    let attempt = || async {
        let docker = match address.client() {
            Ok(d) => d.with_timeout(REQUEST_TIMEOUT),
            // The socket appears when dockerd starts: that is what the wait is for.
            Err(e @ bollard::errors::Error::SocketNotFoundError(_)) => {
                return Poll::Pending(e.to_string());
            }
            // A malformed DOCKER_HOST does not get better by waiting.
            Err(e) => {
                return Poll::Fatal(format!(
                    "cannot use DOCKER_HOST {:?}: {e}",
                    address.to_string()
                ));
            }
        };
        match docker.negotiate_version().await {
            Ok(d) => Poll::Ready(d),
            Err(e) => Poll::Pending(one_line(&e)),
        }
    };
    match poll_until(
        deadline,
        Backoff::new(Duration::from_millis(250), Duration::from_secs(2)),
        attempt,
    )
    .await
    {
        Ok(d) => Ok(d),
        Err(WaitError::Fatal(e)) => Err(e),
        Err(WaitError::Deadline { waited, last }) => Err(format!(
            "the Docker engine at {address} did not answer within {}s: {last}",
            waited.as_secs()
        )),
    }
}

/// A bollard error as one line without the noise of its Debug form.
pub fn one_line(e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError {
            status_code,
            message,
        } => format!("{} (HTTP {status_code})", message.trim()),
        E::DockerStreamError { error } => error.trim().to_string(),
        other => {
            let mut s = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                s.push_str(": ");
                s.push_str(&cause.to_string());
                source = cause.source();
            }
            s
        }
    }
}

pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Restart policy string (validated by the config) to Docker's form.
pub fn restart_policy(restart: &str) -> RestartPolicy {
    let (name, max) = match restart.split_once(':') {
        Some((_, n)) => (
            RestartPolicyNameEnum::ON_FAILURE,
            n.parse::<i64>().ok().filter(|n| *n > 0),
        ),
        None => (
            match restart {
                "no" => RestartPolicyNameEnum::NO,
                "always" => RestartPolicyNameEnum::ALWAYS,
                "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
                _ => RestartPolicyNameEnum::UNLESS_STOPPED,
            },
            None,
        ),
    };
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: max,
    }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// The create request for `spec`, with `labels` (ours included) and `image` (the normalized
/// reference that was pulled or found).
pub fn create_body(
    spec: &ContainerSpec,
    image: &str,
    labels: BTreeMap<String, String>,
) -> ContainerCreateBody {
    let log_config = spec.log_driver.as_ref().map(|driver| HostConfigLogConfig {
        typ: Some(driver.clone()),
        config: Some(
            spec.log_options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
    });
    let host_config = HostConfig {
        binds: non_empty(spec.binds.clone()),
        network_mode: Some(spec.network_mode.clone()),
        pid_mode: spec.pid_mode.clone(),
        privileged: Some(spec.privileged),
        cap_add: non_empty(spec.cap_add.clone()),
        cap_drop: non_empty(spec.cap_drop.clone()),
        restart_policy: Some(restart_policy(&spec.restart)),
        memory: spec.memory_mib.map(|m| (m * 1024 * 1024) as i64),
        log_config,
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: spec.entrypoint.clone(),
        cmd: non_empty(spec.command.clone()),
        env: non_empty(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        user: spec.user.clone(),
        labels: Some(labels.into_iter().collect::<HashMap<_, _>>()),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// Every container of `scope`, by its configured name (the name label, else Docker's name).
pub async fn list_ours(docker: &Docker, scope: &str) -> Result<BTreeMap<String, Observed>, String> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={scope}", spec_hash::MANAGED)],
    )]);
    let list = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("listing containers: {}", one_line(&e)))?;
    let mut ours = BTreeMap::new();
    for c in list {
        let labels = c.labels.unwrap_or_default();
        let name = labels.get(spec_hash::NAME).cloned().or_else(|| {
            c.names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
        });
        let (Some(name), Some(id)) = (name, c.id) else {
            continue;
        };
        let state = c.state.map(|s| s.to_string()).unwrap_or_default();
        ours.insert(
            name,
            Observed {
                id,
                hash: labels.get(spec_hash::CONFIG_HASH).cloned(),
                state: EngineState::from_docker(&state),
                image_id: c.image_id.unwrap_or_default(),
            },
        );
    }
    Ok(ours)
}

pub async fn create(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> Result<String, bollard::errors::Error> {
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_string()),
                ..Default::default()
            }),
            body,
        )
        .await?;
    Ok(created.id)
}

pub async fn inspect(
    docker: &Docker,
    id: &str,
) -> Result<ContainerInspectResponse, bollard::errors::Error> {
    docker.inspect_container(id, None).await
}

/// Stops gracefully; an already stopped or vanished container is fine.
pub async fn stop(docker: &Docker, id: &str) -> Result<(), String> {
    match docker
        .stop_container(
            id,
            Some(StopContainerOptions {
                t: Some(STOP_GRACE_SECS),
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304 | 404,
            ..
        }) => Ok(()),
        Err(e) => Err(format!("stopping: {}", one_line(&e))),
    }
}

/// Stops (so the process gets its SIGTERM and grace period), then removes.
pub async fn stop_and_remove(docker: &Docker, id: &str) -> Result<(), String> {
    stop(docker, id).await?;
    match docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(format!("removing: {}", one_line(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_is_the_socket_under_the_root_unless_docker_host_names_one() {
        let root = Paths::new("/srv/instance");
        let socket = EngineAddress::choose(None, &root);
        assert_eq!(
            socket,
            EngineAddress::Socket("/srv/instance/var/run/docker.sock".into())
        );
        assert_eq!(
            socket.to_string(),
            "unix:///srv/instance/var/run/docker.sock"
        );
        assert!(!socket.may_exist());
        assert_eq!(
            EngineAddress::choose(Some(String::new()), &root),
            socket,
            "an empty DOCKER_HOST is unset"
        );
        let host = EngineAddress::choose(Some("tcp://127.0.0.1:2375".into()), &root);
        assert_eq!(host, EngineAddress::Host("tcp://127.0.0.1:2375".into()));
        assert!(host.may_exist());
        assert_eq!(
            EngineAddress::choose(None, &Paths::new("/")),
            EngineAddress::Socket("/var/run/docker.sock".into())
        );
    }

    #[tokio::test]
    async fn no_socket_under_the_root_means_no_engine_even_if_the_host_has_one() {
        let dir = tempfile::tempdir().unwrap();
        let address = EngineAddress::choose(None, &Paths::new(dir.path()));
        let err = connect(&address, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            err.contains(&format!(
                "unix://{}/var/run/docker.sock",
                dir.path().display()
            )),
            "{err}"
        );
    }

    use crate::config::test_spec as spec;

    #[test]
    fn defaults_give_host_network_and_unless_stopped() {
        let body = create_body(&spec(""), "img:1", BTreeMap::new());
        let hc = body.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("host"));
        assert_eq!(
            hc.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(hc.memory, None);
        assert_eq!(body.cmd, None, "no command keeps the image's CMD");
        assert_eq!(body.env, None);
    }

    #[test]
    fn every_field_reaches_docker() {
        let s = spec(
            r#"command = ["/bin/app", "-v"]
entrypoint = ["/init"]
env = { B = "2", A = "1" }
binds = ["/var/log:/host/var/log:ro"]
pid_mode = "host"
privileged = true
cap_add = ["SYS_ADMIN"]
cap_drop = ["NET_RAW"]
user = "0:0"
restart = "on-failure:5"
memory_mib = 128
log_driver = "json-file"
log_options = { max-size = "10m" }
"#,
        );
        let body = create_body(
            &s,
            "img:1",
            BTreeMap::from([("k".to_string(), "v".to_string())]),
        );
        assert_eq!(body.cmd.unwrap(), ["/bin/app", "-v"]);
        assert_eq!(body.entrypoint.unwrap(), ["/init"]);
        assert_eq!(body.env.unwrap(), ["A=1", "B=2"]);
        assert_eq!(body.user.as_deref(), Some("0:0"));
        assert_eq!(body.labels.unwrap()["k"], "v");
        let hc = body.host_config.unwrap();
        assert_eq!(hc.binds.unwrap(), ["/var/log:/host/var/log:ro"]);
        assert_eq!(hc.pid_mode.as_deref(), Some("host"));
        assert_eq!(hc.privileged, Some(true));
        assert_eq!(hc.cap_add.unwrap(), ["SYS_ADMIN"]);
        assert_eq!(hc.cap_drop.unwrap(), ["NET_RAW"]);
        assert_eq!(hc.memory, Some(128 * 1024 * 1024));
        let rp = hc.restart_policy.unwrap();
        assert_eq!(rp.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(rp.maximum_retry_count, Some(5));
        let log = hc.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        assert_eq!(log.config.unwrap()["max-size"], "10m");
    }

    #[test]
    fn restart_policies() {
        assert_eq!(restart_policy("no").name, Some(RestartPolicyNameEnum::NO));
        assert_eq!(
            restart_policy("always").name,
            Some(RestartPolicyNameEnum::ALWAYS)
        );
        let p = restart_policy("on-failure");
        assert_eq!(p.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(p.maximum_retry_count, None);
    }
}
