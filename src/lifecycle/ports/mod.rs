//! What the launch and the drain reach outside ecs-boot, as small traits: the ECS control plane,
//! the local ECS agent's introspection API, the system containers in the Docker engine. `Live`
//! implements them over the real clients; the stages' tests over an in-memory cluster
//! (fake.rs). Shared here because both stages use them (launch/ and drain/).

#[cfg(test)]
pub mod fake;

use crate::config::Config;
use crate::containers::Scope;
use crate::error::{Error, Result};
use crate::sources::aws::{self, Aws};
use crate::sources::ecs_agent::{Introspection, Metadata, Unavailable};
use crate::util::clock::{Clock, SystemClock};
use aws_sdk_ecs::types::{ContainerInstanceStatus, DesiredStatus};
use std::time::Duration;
use time::OffsetDateTime;

/// A task as DescribeTasks shows it, reduced to what the drain decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub arn: String,
    /// Started by a service (DRAINING replaces it); otherwise standalone (RunTask).
    pub service: bool,
    pub stopped: bool,
}

/// The ECS control-plane calls of the launch and the drain.
#[allow(async_fn_in_trait)]
pub trait EcsControl {
    /// PutAttributes `ecs-boot.ready` on the container instance (readiness.rs).
    async fn set_ready(&self, cluster: &str, arn: &str, ready: bool) -> Result<()>;
    /// The container instance's status (ACTIVE, DRAINING…).
    async fn instance_status(&self, cluster: &str, arn: &str) -> Result<String>;
    /// UpdateContainerInstancesState: DRAINING (`true`) or ACTIVE again.
    async fn set_draining(&self, cluster: &str, arn: &str, draining: bool) -> Result<()>;
    /// ListTasks(desiredStatus=RUNNING); `None` when it cannot answer.
    async fn running_tasks(&self, cluster: &str, arn: &str) -> Option<Vec<String>>;
    /// DescribeTasks; the error is the service's message.
    async fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
    ) -> std::result::Result<Vec<TaskInfo>, String>;
    async fn stop_task(
        &self,
        cluster: &str,
        arn: &str,
        reason: &str,
    ) -> std::result::Result<(), String>;
}

/// The local ECS agent's introspection API, as the launch and the drain use it.
#[allow(async_fn_in_trait)]
pub trait AgentView {
    /// `/v1/metadata`: the registration (cluster, container instance, version), or why not.
    async fn metadata(&self) -> std::result::Result<Metadata, Unavailable>;
    async fn container_instance_arn(&self) -> Option<String> {
        self.metadata()
            .await
            .ok()
            .and_then(|m| m.container_instance_arn)
    }
    /// Live (not STOPPED) task ARNs; `None` when the agent does not answer.
    async fn live_tasks(&self) -> Option<Vec<String>>;
}

/// ecs-boot's system containers in the Docker engine.
#[allow(async_fn_in_trait)]
pub trait SystemContainers {
    async fn stop_all(&self) -> Result<()>;
}

/// The real world: AWS, the agent's introspection, the Docker engine, the system clock.
pub struct Live<'a> {
    pub aws: &'a Aws,
    pub intro: &'a Introspection,
    pub container_scope: &'a Scope,
    pub config: &'a Config,
}

impl EcsControl for Live<'_> {
    async fn set_ready(&self, cluster: &str, arn: &str, ready: bool) -> Result<()> {
        crate::lifecycle::readiness::put_ready(self.aws, cluster, arn, ready).await
    }

    async fn instance_status(&self, cluster: &str, arn: &str) -> Result<String> {
        let out = self
            .aws
            .ecs()
            .describe_container_instances()
            .cluster(cluster)
            .container_instances(arn)
            .send()
            .await
            .map_err(|e| Error::aws("DescribeContainerInstances", arn, aws::describe(&e)))?;
        Ok(out
            .container_instances()
            .first()
            .and_then(|c| c.status())
            .unwrap_or_default()
            .to_string())
    }

    async fn set_draining(&self, cluster: &str, arn: &str, draining: bool) -> Result<()> {
        let status = if draining {
            ContainerInstanceStatus::Draining
        } else {
            ContainerInstanceStatus::Active
        };
        // DRAINING: one attempt; the drain resends a throttled call itself (until its deadline)
        // and reads the status before resending after any other failure. ACTIVE again (undrain,
        // which has no loop of its own): the SDK's retries, safe since it changes nothing twice.
        let ecs = if draining {
            self.aws.ecs_retried_by_caller()
        } else {
            self.aws.ecs()
        };
        ecs.update_container_instances_state()
            .cluster(cluster)
            .container_instances(arn)
            .status(status)
            .send()
            .await
            .map_err(|e| Error::sdk("UpdateContainerInstancesState", arn, &e))?;
        Ok(())
    }

    async fn running_tasks(&self, cluster: &str, arn: &str) -> Option<Vec<String>> {
        let out = self
            .aws
            .ecs()
            .list_tasks()
            .cluster(cluster)
            .container_instance(arn)
            .desired_status(DesiredStatus::Running)
            .send()
            .await
            .ok()?;
        Some(out.task_arns().to_vec())
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
    ) -> std::result::Result<Vec<TaskInfo>, String> {
        let out = self
            .aws
            .ecs()
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(arns.to_vec()))
            .send()
            .await
            .map_err(|e| aws::describe(&e))?;
        Ok(out
            .tasks()
            .iter()
            .filter_map(|t| {
                Some(TaskInfo {
                    arn: t.task_arn()?.to_string(),
                    service: t.group().is_some_and(|g| g.starts_with("service:"))
                        || t.started_by().is_some_and(|s| s.starts_with("ecs-svc/")),
                    stopped: t.last_status() == Some("STOPPED"),
                })
            })
            .collect())
    }

    async fn stop_task(
        &self,
        cluster: &str,
        arn: &str,
        reason: &str,
    ) -> std::result::Result<(), String> {
        self.aws
            .ecs()
            .stop_task()
            .cluster(cluster)
            .task(arn)
            .reason(reason)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws::describe(&e))
    }
}

impl AgentView for Live<'_> {
    async fn metadata(&self) -> std::result::Result<Metadata, Unavailable> {
        self.intro.metadata().await
    }

    async fn live_tasks(&self) -> Option<Vec<String>> {
        let tasks = self.intro.tasks().await.ok()?;
        Some(
            tasks
                .into_iter()
                .filter(|t| t.is_live())
                .map(|t| t.arn)
                .collect(),
        )
    }
}

impl SystemContainers for Live<'_> {
    async fn stop_all(&self) -> Result<()> {
        crate::containers::stop_all_in(self.config, self.container_scope).await
    }
}

impl Clock for Live<'_> {
    fn now_utc(&self) -> OffsetDateTime {
        SystemClock.now_utc()
    }

    async fn sleep(&self, d: Duration) {
        SystemClock.sleep(d).await
    }
}
