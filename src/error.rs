//! The top-level error: wraps each concern's error and knows the hint an operator needs.

use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Imds(#[from] crate::sources::imds::ImdsFailure),
    #[error("instance tags are not readable from IMDS (404 on /latest/meta-data/tags/instance) and these are required: {}", missing.join(", "))]
    TagsDisabled { missing: Vec<String> },
    #[error("required tags still missing after {}s: {}", waited.as_secs(), missing.join(", "))]
    TagsMissing {
        missing: Vec<String>,
        waited: Duration,
    },
    #[error(transparent)]
    Tag(#[from] crate::config::tags::TagError),
    #[error(transparent)]
    Env(#[from] crate::config::layers::EnvError),
    #[error("{key}: {source}")]
    Location {
        key: String,
        source: crate::sources::location::LocationError,
    },
    #[error("cannot fetch {what} from {source}")]
    Fetch {
        what: &'static str,
        source: crate::sources::aws::FetchError,
    },
    #[error(
        "registry credentials in {location} are a plain {kind} parameter; store them as an SSM SecureString"
    )]
    NotSecure {
        location: String,
        kind: &'static str,
    },
    #[error(transparent)]
    Trust(#[from] crate::config::trust::TrustError),
    #[error(transparent)]
    Auth(#[from] crate::sources::registry_auth::AuthError),
    #[error(transparent)]
    Write(#[from] crate::ecs_config::WriteError),
    #[error(transparent)]
    ExistingEcsConfig(#[from] crate::ecs_config::ExistingError),
    #[error("{0}")]
    Containers(String),
    #[error(transparent)]
    Registration(#[from] crate::sources::ecs_agent::RegistrationError),
    /// An AWS call failed: which call, on what, and what AWS said; the hint fits the call.
    #[error("{call} {resource}: {message}")]
    Aws {
        call: &'static str,
        resource: String,
        message: String,
        /// Refused by the account's rate limit before the service considered it: certainly not
        /// applied, so it may be sent again without checking whether it took effect.
        throttled: bool,
    },
    #[error(
        "{named_by} names a {transition} hook that {asg} does not have (or ECS's managed-draining hook, which is ECS's to complete)"
    )]
    HookNotFound {
        named_by: String,
        asg: String,
        transition: crate::status::state::Transition,
    },
    /// An essential `[[bootstrap]]` container failed: its exit code (or why none) and its last
    /// log lines, escaped and capped (environment values are never part of it).
    #[error("bootstrap container {name} ({image}) {problem}")]
    Bootstrap {
        name: String,
        image: String,
        problem: String,
    },
    /// A required `[hooks]` command failed.
    #[error("{0}")]
    Hook(String),
    #[error("{0}")]
    Lifecycle(String),
    #[error("{0}")]
    Drain(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// What to check first; shown in status and logged with the error.
    pub fn hint(&self) -> String {
        match self {
            Error::Config(_) => "fix the named key in the config file; `ecs-boot check-config FILE` validates it offline".into(),
            Error::Imds(f) if f.status == Some(403) => "IMDS refused the request: is the metadata endpoint enabled (http_endpoint = \"enabled\")?".into(),
            Error::Imds(_) => "check that IMDS is enabled and reachable (ecs-boot runs on the host: hop limit 1 suffices) and that IMDSv2 tokens are allowed".into(),
            Error::TagsDisabled { .. } => "enable instance tags in metadata: launch template metadata_options { instance_metadata_tags = \"enabled\" } (or aws ec2 modify-instance-metadata-options --instance-metadata-tags enabled), and tag the ASG with propagate_at_launch".into(),
            Error::TagsMissing { .. } => "tag the ASG with these keys and propagate_at_launch = true; if they arrive late, raise [tags] wait in config.toml".into(),
            Error::Tag(_) => "fix the named tag on the ASG (propagated tags) or the instance".into(),
            Error::Env(crate::config::layers::EnvError::NoCluster) => "set the ecs-boot:cluster tag on the ASG (propagate_at_launch) or [ecs] cluster in /etc/ecs-boot/config.toml".into(),
            Error::Env(_) => "fix the named tag or [ecs.settings] key; tags may only set placement and tuning variables (see the README's tag contract)".into(),
            Error::Location { .. } => "use s3://bucket/key or ssm:/parameter/name".into(),
            Error::Trust(_) => "point the tag at a location under the allowed prefixes, or add the prefix to [trust] in /etc/ecs-boot/config.toml or a config.d file (user data); see the README's trust rules".into(),
            Error::Fetch { source, .. } if source.no_credentials => "give the instance an instance profile whose role may read it (the Terraform module attaches one), and check that IMDS is reachable with IMDSv2 tokens".into(),
            Error::Fetch { .. } => "check the object exists and the instance role may read it (s3:GetObject, or ssm:GetParameter plus kms:Decrypt)".into(),
            Error::NotSecure { .. } => "recreate the parameter with --type SecureString".into(),
            Error::Auth(_) => "fix the credentials object: Docker config.json ({\"auths\":{...}}), dockercfg, or {\"username\",\"password\",\"registry\"}".into(),
            Error::Write(_) => "check that /etc/ecs is writable (not read-only, disk not full)".into(),
            Error::ExistingEcsConfig(_) => "fix or remove that line of /etc/ecs/ecs.config (written by user data?): ecs-boot keeps every line it does not manage, so it must read them exactly".into(),
            Error::Containers(_) => "check the image name and the Docker engine (`docker ps -a`, `journalctl -u docker`); essential containers must stay up".into(),
            Error::Registration(_) => "check the ECS agent: `systemctl status ecs`, `journalctl -u ecs`, /var/log/ecs/ecs-agent.log, and that the instance role can reach ECS".into(),
            Error::Aws { call, .. } => aws_hint(call),
            Error::HookNotFound { .. } => "name a hook the group has for this transition (aws autoscaling describe-lifecycle-hooks), or drop the name to discover it".into(),
            Error::Bootstrap { .. } => "run the container by hand (`docker run` with the same image, command and binds) and read its output; `journalctl -u ecs-boot` has its last lines; bootstrap commands must be idempotent, since every start of ecs-boot runs them again".into(),
            Error::Hook(_) => "run the hook command by hand with the environment in the README (\"Hooks\"); `journalctl -u ecs-boot` has its output".into(),
            Error::Lifecycle(_) => "check the instance role may call autoscaling:CompleteLifecycleAction / RecordLifecycleActionHeartbeat on this ASG".into(),
            Error::Drain(_) => "check the instance role may call ecs:UpdateContainerInstancesState, ecs:ListTasks, ecs:DescribeTasks and ecs:StopTask".into(),
            Error::Other(_) => "see `journalctl -u ecs-boot`".into(),
        }
    }
}

impl Error {
    pub fn aws(call: &'static str, resource: &str, message: String) -> Error {
        Error::Aws {
            call,
            resource: resource.to_string(),
            message,
            throttled: false,
        }
    }

    /// An SDK error of `call` on `resource`: AWS's code and message, and whether the rate limit
    /// refused it.
    pub fn sdk<
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    >(
        call: &'static str,
        resource: &str,
        e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> Error {
        Error::Aws {
            call,
            resource: resource.to_string(),
            message: crate::sources::aws::describe(e),
            throttled: crate::sources::aws::throttled(e),
        }
    }

    /// Whether this is an AWS call the rate limit refused (never considered, safe to resend).
    pub fn is_throttled(&self) -> bool {
        matches!(
            self,
            Error::Aws {
                throttled: true,
                ..
            }
        )
    }
}

/// What to check when `call` fails: the permission it needs, on what.
fn aws_hint(call: &str) -> String {
    let permission = match call {
        "DescribeAutoScalingInstances" | "DescribeLifecycleHooks" => {
            "autoscaling:DescribeAutoScalingInstances and autoscaling:DescribeLifecycleHooks (resource \"*\")"
        }
        "CompleteLifecycleAction" | "RecordLifecycleActionHeartbeat" => {
            "autoscaling:CompleteLifecycleAction and autoscaling:RecordLifecycleActionHeartbeat on this group"
        }
        "DescribeContainerInstances" | "UpdateContainerInstancesState" => {
            "ecs:DescribeContainerInstances and ecs:UpdateContainerInstancesState on this cluster's container instances"
        }
        "PutAttributes" => "ecs:PutAttributes on this cluster's container instances",
        "ListTasks" | "DescribeTasks" | "StopTask" => {
            "ecs:ListTasks, ecs:DescribeTasks and ecs:StopTask in this cluster"
        }
        _ => "the instance role's permissions for this call",
    };
    format!("check that the instance role has {permission}, and that the endpoint is reachable")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
