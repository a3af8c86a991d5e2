//! A `[[bootstrap]]` container, once: created, started, waited for up to its timeout, its exit
//! code and last log lines read, removed. Bootstrap containers carry their own label (never the
//! system containers' `managed` label), so reconcile neither keeps nor removes them; a leftover
//! from a run that crashed is recognised by that label and replaced.

use super::{Scope, engine, pull};
use crate::config::BootstrapSpec;
use crate::sources::aws::Aws;
use crate::sources::registry_auth::RegistryAuth;
use bollard::Docker;
use bollard::query_parameters::{KillContainerOptions, LogsOptions, RemoveContainerOptions};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// Marks a bootstrap container as ours; the value is the scope (as for system containers).
pub const LABEL: &str = "io.ecs-boot.bootstrap";
/// Log lines kept from the end of a bootstrap container's output.
const TAIL_LINES: &str = "20";
/// Bytes of that tail kept for errors and status: the journal gets it too.
pub const TAIL_BYTES: usize = 1024;

/// How the container ended.
#[derive(Debug)]
pub struct Finished {
    pub exit_code: i64,
    /// The last lines it wrote (stdout and stderr), at most `TAIL_BYTES`, raw: escape to show.
    pub tail: String,
}

/// Why it did not finish on its own.
#[derive(Debug)]
pub enum Failure {
    /// No engine, no image, or the engine refused a request.
    Engine(String),
    /// Still running at its timeout: killed, with what it had written.
    Timeout { after: Duration, tail: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Engine(e) => f.write_str(e),
            Failure::Timeout { after, .. } => {
                write!(
                    f,
                    "still running after its timeout of {}s: killed",
                    after.as_secs()
                )
            }
        }
    }
}

/// The Docker name of bootstrap container `name`: never a system container's name.
pub fn container_name(name: &str) -> String {
    format!("ecs-boot-bootstrap-{name}")
}

/// Runs `spec` to completion on the scope's engine (waiting up to `engine_wait` for it); the
/// scope's label value marks the container as ours.
pub async fn run(
    spec: &BootstrapSpec,
    auth: Option<&RegistryAuth>,
    aws: &Aws,
    scope: &Scope,
    engine_wait: Duration,
) -> Result<Finished, Failure> {
    let docker = engine::connect(&scope.engine, engine_wait)
        .await
        .map_err(Failure::Engine)?;
    let scope = scope.label.as_str();
    let as_container = spec.as_container();
    let ready = pull::ensure(&docker, &as_container, auth, aws)
        .await
        .map_err(Failure::Engine)?;
    if let Some(w) = ready.warning {
        tracing::warn!(bootstrap = %spec.name, warning = %w, "bootstrap image");
    }
    let name = container_name(&spec.name);
    remove_leftover(&docker, &name, scope).await?;
    let image = pull::ImageRef::parse(&spec.image).full();
    let labels = BTreeMap::from([(LABEL.to_string(), scope.to_string())]);
    let body = engine::create_body(&as_container, &image, labels);
    let id = engine::create(&docker, &name, body)
        .await
        .map_err(|e| Failure::Engine(format!("creating: {}", engine::one_line(&e))))?;
    let outcome = start_and_wait(&docker, &id, spec.timeout).await;
    let tail = tail(&docker, &id).await;
    remove(&docker, &id).await;
    match outcome {
        Ok(exit_code) => Ok(Finished { exit_code, tail }),
        Err(WaitEnd::Timeout) => Err(Failure::Timeout {
            after: spec.timeout,
            tail,
        }),
        Err(WaitEnd::Engine(e)) => Err(Failure::Engine(e)),
    }
}

enum WaitEnd {
    Timeout,
    Engine(String),
}

async fn start_and_wait(docker: &Docker, id: &str, timeout: Duration) -> Result<i64, WaitEnd> {
    docker
        .start_container(id, None)
        .await
        .map_err(|e| WaitEnd::Engine(format!("starting: {}", engine::one_line(&e))))?;
    let wait = async {
        let mut stream = docker.wait_container(id, None);
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(WaitEnd::Engine(format!(
                "waiting: {}",
                engine::one_line(&e)
            ))),
            None => Err(WaitEnd::Engine(
                "waiting: the engine closed the stream".into(),
            )),
        }
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r,
        Err(_) => {
            let kill = KillContainerOptions {
                signal: "SIGKILL".into(),
            };
            if let Err(e) = docker.kill_container(id, Some(kill)).await {
                tracing::warn!(container = %id, error = %engine::one_line(&e), "cannot kill a bootstrap container past its timeout");
            }
            Err(WaitEnd::Timeout)
        }
    }
}

/// The container's last lines (stdout and stderr), at most `TAIL_BYTES` from the end.
async fn tail(docker: &Docker, id: &str) -> String {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: TAIL_LINES.into(),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut stream = docker.logs(id, Some(options));
    let collect = async {
        while let Some(Ok(chunk)) = stream.next().await {
            out.extend_from_slice(&chunk.into_bytes());
            if out.len() > 64 * 1024 {
                out.drain(..out.len() - TAIL_BYTES);
            }
        }
    };
    // Logs of a stopped container come at once; never wait on a stuck engine for them.
    let _ = tokio::time::timeout(Duration::from_secs(10), collect).await;
    keep_end(&String::from_utf8_lossy(&out), TAIL_BYTES)
}

/// The last at most `max` bytes of `s`, cut at a character boundary.
pub fn keep_end(s: &str, max: usize) -> String {
    let s = s.trim_end();
    if s.len() <= max {
        return s.to_string();
    }
    let mut at = s.len() - max;
    while !s.is_char_boundary(at) {
        at += 1;
    }
    format!("…{}", &s[at..])
}

async fn remove(docker: &Docker, id: &str) {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => {}
        Err(e) if engine::is_not_found(&e) => {}
        Err(e) => {
            tracing::warn!(container = %id, error = %engine::one_line(&e), "cannot remove a bootstrap container")
        }
    }
}

/// A container of that name left by a run that crashed is ours to replace; any other is not.
async fn remove_leftover(docker: &Docker, name: &str, scope: &str) -> Result<(), Failure> {
    let found = match engine::inspect(docker, name).await {
        Ok(c) => c,
        Err(e) if engine::is_not_found(&e) => return Ok(()),
        Err(e) => {
            return Err(Failure::Engine(format!(
                "inspecting {name}: {}",
                engine::one_line(&e)
            )));
        }
    };
    let ours = found
        .config
        .and_then(|c| c.labels)
        .is_some_and(|l| l.get(LABEL).map(String::as_str) == Some(scope));
    if !ours {
        return Err(Failure::Engine(format!(
            "a container named {name} exists that this ecs-boot did not create; it is left alone: remove or rename it"
        )));
    }
    tracing::info!(container = %name, "removing a bootstrap container left by an earlier run");
    remove(docker, name).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_end_cuts_at_a_character_boundary() {
        assert_eq!(keep_end("short\n", 10), "short");
        assert_eq!(keep_end("abcdef", 3), "…def");
        let s = "é".repeat(10);
        let cut = keep_end(&s, 5);
        assert!(cut.starts_with('…') && cut.ends_with('é'), "{cut}");
        assert!(cut.len() <= 5 + '…'.len_utf8());
    }

    #[test]
    fn bootstrap_containers_are_never_system_containers() {
        assert_ne!(LABEL, super::super::spec_hash::MANAGED);
        assert_eq!(container_name("disks"), "ecs-boot-bootstrap-disks");
    }
}
