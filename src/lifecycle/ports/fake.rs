//! An in-memory cluster for the drain and the launch: one container instance and its status,
//! the tasks on it (each gone after some listings, or never until stopped), the local agent up
//! or down (or a script of its introspection answers), the system containers, a fake clock;
//! every call logged, with the real services' answers.

use crate::error::{Error, Result};
use crate::lifecycle::ports::{AgentView, EcsControl, SystemContainers, TaskInfo};
use crate::sources::ecs_agent::{Metadata, Unavailable};
use crate::util::call_log::CallLog;
use crate::util::clock::Clock;
use crate::util::clock::fake::FakeClock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

pub const CI_ARN: &str = "arn:aws:ecs:eu-west-1:123456789012:container-instance/web/ci-1";
/// The cluster the agent registers into when up.
pub const CLUSTER: &str = "web";

/// One answer of the agent's `/v1/metadata`, scripted.
#[derive(Debug, Clone)]
pub enum AgentAnswer {
    /// The port is closed: not registered yet, or the agent is down.
    NotListening,
    /// It answers, but with an error (HTTP 500, a garbled body).
    Broken,
    /// It answers without a container instance yet.
    NoInstance,
    /// Registered into this cluster.
    Registered(&'static str),
}

#[derive(Debug, Clone)]
pub struct FakeTask {
    pub arn: String,
    /// Started by a service (DRAINING replaces it) rather than RunTask.
    pub service: bool,
    /// Gone after this many listings; `None`: only a StopTask ends it.
    pub gone_after: Option<u32>,
    pub stopped: bool,
}

pub struct Cluster {
    pub status: String,
    pub agent_up: bool,
    pub tasks: Vec<FakeTask>,
    pub listings: u32,
    pub calls: CallLog,
    /// The agent's next `/v1/metadata` answers; once spent, `agent_up` decides.
    pub agent_script: VecDeque<AgentAnswer>,
    /// PutAttributes is refused (a permission missing).
    pub refuse_put_attributes: bool,
    /// The next this many UpdateContainerInstancesState are refused by the rate limit.
    pub throttle_updates: u32,
}

#[derive(Clone)]
pub struct FakeWorld {
    pub inner: Arc<Mutex<Cluster>>,
    pub clock: FakeClock,
}

impl FakeWorld {
    /// An ACTIVE instance, its agent up, running `tasks`.
    pub fn with_tasks(tasks: &[FakeTask]) -> FakeWorld {
        FakeWorld {
            inner: Arc::new(Mutex::new(Cluster {
                status: "ACTIVE".into(),
                agent_up: true,
                tasks: tasks.to_vec(),
                listings: 0,
                calls: CallLog::default(),
                agent_script: VecDeque::new(),
                refuse_put_attributes: false,
                throttle_updates: 0,
            })),
            clock: FakeClock::default(),
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.inner.lock().unwrap().calls.all()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.inner.lock().unwrap().calls.count(prefix)
    }

    fn live(c: &mut Cluster) -> Vec<String> {
        c.listings += 1;
        let n = c.listings;
        c.tasks
            .iter()
            .filter(|t| !t.stopped && t.gone_after.is_none_or(|g| n <= g))
            .map(|t| t.arn.clone())
            .collect()
    }
}

/// A service task gone after `n` listings.
pub fn service_task(arn: &str, gone_after: u32) -> FakeTask {
    FakeTask {
        arn: arn.into(),
        service: true,
        gone_after: Some(gone_after),
        stopped: false,
    }
}

/// A standalone (RunTask) task that runs until stopped.
pub fn standalone_task(arn: &str) -> FakeTask {
    FakeTask {
        arn: arn.into(),
        service: false,
        gone_after: None,
        stopped: false,
    }
}

impl EcsControl for FakeWorld {
    async fn set_ready(&self, _cluster: &str, arn: &str, ready: bool) -> Result<()> {
        let mut c = self.inner.lock().unwrap();
        c.calls
            .push(format!("PutAttributes ecs-boot.ready={ready}"));
        if c.refuse_put_attributes {
            return Err(Error::aws(
                "PutAttributes",
                arn,
                "AccessDeniedException".into(),
            ));
        }
        Ok(())
    }

    async fn instance_status(&self, _cluster: &str, _arn: &str) -> Result<String> {
        let mut c = self.inner.lock().unwrap();
        c.calls.push("DescribeContainerInstances");
        Ok(c.status.clone())
    }

    async fn set_draining(&self, _cluster: &str, arn: &str, draining: bool) -> Result<()> {
        let mut c = self.inner.lock().unwrap();
        let status = if draining { "DRAINING" } else { "ACTIVE" };
        c.calls
            .push(format!("UpdateContainerInstancesState {status}"));
        if c.throttle_updates > 0 {
            c.throttle_updates -= 1;
            return Err(Error::Aws {
                call: "UpdateContainerInstancesState",
                resource: arn.into(),
                message: "ThrottlingException: Rate exceeded".into(),
                throttled: true,
            });
        }
        if arn != CI_ARN {
            return Err(Error::aws(
                "UpdateContainerInstancesState",
                arn,
                "InvalidParameterException".into(),
            ));
        }
        c.status = status.into();
        Ok(())
    }

    async fn running_tasks(&self, _cluster: &str, _arn: &str) -> Option<Vec<String>> {
        let mut c = self.inner.lock().unwrap();
        c.calls.push("ListTasks");
        Some(Self::live(&mut c))
    }

    async fn describe_tasks(
        &self,
        _cluster: &str,
        arns: &[String],
    ) -> std::result::Result<Vec<TaskInfo>, String> {
        let mut c = self.inner.lock().unwrap();
        c.calls.push(format!("DescribeTasks {}", arns.len()));
        Ok(c.tasks
            .iter()
            .filter(|t| arns.contains(&t.arn))
            .map(|t| TaskInfo {
                arn: t.arn.clone(),
                service: t.service,
                stopped: t.stopped,
            })
            .collect())
    }

    async fn stop_task(
        &self,
        _cluster: &str,
        arn: &str,
        _reason: &str,
    ) -> std::result::Result<(), String> {
        let mut c = self.inner.lock().unwrap();
        c.calls.push(format!("StopTask {arn}"));
        match c.tasks.iter_mut().find(|t| t.arn == arn) {
            Some(t) => {
                t.stopped = true;
                Ok(())
            }
            None => Err("InvalidParameterException: task not found".into()),
        }
    }
}

impl AgentView for FakeWorld {
    async fn metadata(&self) -> std::result::Result<Metadata, Unavailable> {
        let mut c = self.inner.lock().unwrap();
        c.calls.push("agent /v1/metadata");
        let answer = c.agent_script.pop_front().unwrap_or(if c.agent_up {
            AgentAnswer::Registered(CLUSTER)
        } else {
            AgentAnswer::NotListening
        });
        let registered = |cluster: &str, arn: Option<&str>| Metadata {
            cluster: cluster.into(),
            container_instance_arn: arn.map(String::from),
            version: Some("Amazon ECS Agent - v1.90.0".into()),
        };
        match answer {
            AgentAnswer::NotListening => Err(Unavailable::NotListening),
            AgentAnswer::Broken => Err(Unavailable::Other("HTTP 500".into())),
            AgentAnswer::NoInstance => Ok(registered(CLUSTER, None)),
            AgentAnswer::Registered(cluster) => Ok(registered(cluster, Some(CI_ARN))),
        }
    }

    async fn live_tasks(&self) -> Option<Vec<String>> {
        let mut c = self.inner.lock().unwrap();
        c.calls.push("agent /v1/tasks");
        if !c.agent_up {
            return None;
        }
        Some(Self::live(&mut c))
    }
}

impl SystemContainers for FakeWorld {
    async fn stop_all(&self) -> Result<()> {
        self.inner
            .lock()
            .unwrap()
            .calls
            .push("docker stop system containers");
        Ok(())
    }
}

impl Clock for FakeWorld {
    fn now_utc(&self) -> OffsetDateTime {
        self.clock.now_utc()
    }

    async fn sleep(&self, d: Duration) {
        self.clock.sleep(d).await
    }
}
