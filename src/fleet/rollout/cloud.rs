//! Everything a rollout asks of AWS, behind one small trait so the orchestrator (engine.rs) is
//! unit-tested with a fake; aws_cloud.rs is the real thing.

use crate::fleet::output::InstanceResult;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub name: String,
    pub desired: u32,
    pub template_id: Option<String>,
    /// As the group names it: a number, `$Latest` or `$Default`.
    pub template_version: Option<String>,
    pub mixed_instances: bool,
    /// (instance id, LifecycleState).
    pub instances: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub number: i64,
    pub image_id: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refresh {
    pub id: String,
    pub status: String,
    pub reason: Option<String>,
    pub template_id: Option<String>,
    pub version: Option<String>,
}

impl Refresh {
    /// Statuses in which AWS still works on the refresh (and refuses another).
    pub fn is_active(&self) -> bool {
        matches!(
            self.status.as_str(),
            "Pending" | "InProgress" | "Baking" | "Cancelling" | "RollbackInProgress"
        )
    }
    /// Statuses RollbackInstanceRefresh accepts.
    pub fn can_roll_back(&self) -> bool {
        matches!(self.status.as_str(), "Pending" | "InProgress" | "Baking")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Preferences {
    pub min_healthy: u32,
    pub max_healthy: u32,
    pub warmup: Option<u32>,
    pub checkpoints: Vec<u32>,
    pub checkpoint_delay: u32,
    pub bake_time: u32,
}

/// Failures are one line naming the call (the SDK's code and message, never a payload).
pub type Result<T> = std::result::Result<T, String>;

#[allow(async_fn_in_trait)] // used generically, never as `dyn`
pub trait Cloud {
    async fn group(&self, name: &str) -> Result<Option<Group>>;
    /// Groups tagged `ecs-boot:environment` = `environment`.
    async fn groups_of_environment(&self, environment: &str) -> Result<Vec<String>>;
    async fn versions(&self, template_id: &str) -> Result<Vec<Version>>;
    async fn default_version(&self, template_id: &str) -> Result<i64>;
    /// A copy of `source` with `image_id`, keeping its description (Terraform reads it back).
    async fn create_version(
        &self,
        template_id: &str,
        source: &Version,
        image_id: &str,
    ) -> Result<i64>;
    async fn set_default_version(&self, template_id: &str, version: i64) -> Result<()>;
    async fn image_architecture(&self, ami: &str) -> Result<Option<String>>;
    async fn parameter(&self, name: &str) -> Result<Option<String>>;
    async fn put_parameter(&self, name: &str, value: &str) -> Result<()>;
    /// Newest first.
    async fn refreshes(&self, group: &str) -> Result<Vec<Refresh>>;
    async fn start_refresh(
        &self,
        group: &str,
        template_id: &str,
        version: i64,
        prefs: &Preferences,
    ) -> Result<String>;
    async fn rollback_refresh(&self, group: &str) -> Result<()>;
    async fn set_group_version(&self, group: &str, template_id: &str, version: i64) -> Result<()>;
    /// The launch template version each instance was launched from (tag
    /// `aws:ec2launchtemplate:version`).
    async fn instance_versions(&self, ids: &[String]) -> Result<HashMap<String, i64>>;
    /// Each instance's `ecs-boot status --json`, by the fleet collector.
    async fn boot_reports(&self, ids: Vec<String>, timeout: Duration) -> Vec<InstanceResult>;
    async fn sleep(&self, d: Duration);
}
