//! `ecs-boot-fleet rollout`: puts a new AMI into a group's launch template as a numbered version
//! and rolls it out by instance refresh, one canary, then half, then all, promoting past each
//! checkpoint only on the boot health of the new instances (their `ecs-boot status`, collected
//! over SSM by the fleet collector). A failed gate rolls the refresh back and restores the AMI
//! parameter and the default version.
//!
//! `plan` (checkpoints), `gate` (the verdict), `manifest` (Packer's) and `report` are pure;
//! `cloud` is every AWS call behind one trait (`aws_cloud` the real one); `engine` is the
//! orchestration over it.

mod aws_cloud;
mod cloud;
mod engine;
#[cfg(test)]
mod engine_tests;
mod gate;
mod manifest;
mod plan;
mod report;
mod rollback;
mod watch;

use crate::sources::aws::Aws;
use clap::{ArgGroup, Args};
use std::path::PathBuf;
use std::time::Duration;

/// The group tag `--environment` looks for (set it through the module's `tags`).
pub const ENVIRONMENT_TAG: &str = "ecs-boot:environment";

/// Exit codes (README "Shipping a new AMI").
pub mod exit {
    /// Every gate passed; the group runs the new AMI.
    pub const PROMOTED: i32 = 0;
    /// A gate failed; the refresh was rolled back, the parameter and the default restored.
    pub const ROLLED_BACK: i32 = 1;
    /// Bad arguments, manifest or group, or no access: nothing was changed.
    pub const SETUP: i32 = 2;
    /// Could not finish (rollback failed or timed out, the API kept failing): read the report.
    pub const NEEDS_ATTENTION: i32 = 3;
    /// Another instance refresh runs on the group: nothing was changed; retry later.
    pub const BUSY: i32 = 4;
}

#[derive(Args, Debug)]
#[command(
    group(ArgGroup::new("target").required(true).args(["group", "environment"])),
    group(ArgGroup::new("image").required(true).args(["ami", "ami_from_manifest"])),
    after_help = "Exit codes: 0 promoted, 1 a gate failed and the rollout was rolled back, \
2 nothing changed (bad input, no such group, no access), 3 needs attention (the report says \
what state things are in), 4 another instance refresh is running on the group.\n\
Progress goes to stderr; the JSON report (AMI, versions, each gate's evidence) to stdout."
)]
pub struct RolloutArgs {
    /// The Auto Scaling group to roll out to
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// The group tagged ecs-boot:environment=NAME (the pipeline's environment stage name)
    #[arg(long, value_name = "NAME")]
    pub environment: Option<String>,
    /// The AMI to roll out
    #[arg(long, value_name = "AMI_ID")]
    pub ami: Option<String>,
    /// Packer's manifest.json: the AMI of its last run in this region
    #[arg(long, value_name = "PATH")]
    pub ami_from_manifest: Option<PathBuf>,
    /// The SSM parameter Terraform reads the AMI from [default: the manifest's
    /// ami_ssm_parameter, else /ecs-boot/ami/<the image's architecture>]
    #[arg(long, value_name = "NAME")]
    pub ami_parameter: Option<String>,
    /// AWS region [default: the SDK's chain]
    #[arg(long)]
    pub region: Option<String>,
    /// Instance refresh MinHealthyPercentage
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub min_healthy_percentage: u32,
    /// Instance refresh MaxHealthyPercentage (200: replacements launch before old instances go)
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(100..=200))]
    pub max_healthy_percentage: u32,
    /// Instance refresh InstanceWarmup in seconds [default: the group's]
    #[arg(long, value_name = "SECONDS")]
    pub instance_warmup: Option<u32>,
    /// How long the refresh waits at each checkpoint: a gate must decide within it
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub checkpoint_delay: Duration,
    /// How long the finished refresh bakes (still reversible): the last gate decides within it
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub bake_time: Duration,
    /// How long a checkpoint's replacements may take to come into service
    #[arg(long, value_name = "DURATION", default_value = "20m", value_parser = humantime::parse_duration)]
    pub in_service_budget: Duration,
    /// How long collecting the boot reports over SSM may take
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = humantime::parse_duration)]
    pub collect_timeout: Duration,
    /// How long a rollback may take before the rollout gives up watching it
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = humantime::parse_duration)]
    pub rollback_timeout: Duration,
    /// The longest one boot phase may take on a new instance
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_boot_phase: Duration,
    /// The longest a new instance's whole boot may take
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub max_boot: Duration,
    /// The first pause between polls of the refresh (doubling to 8x, jittered)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
}

pub async fn run(args: RolloutArgs) -> crate::error::Result<i32> {
    let aws = Aws::load_default(args.region.as_deref()).await;
    let Some(region) = aws.region() else {
        eprintln!("ecs-boot-fleet rollout: no AWS region: pass --region or set AWS_REGION");
        return Ok(exit::SETUP);
    };
    let cloud = aws_cloud::AwsCloud::new(aws);
    match settings(&cloud, &args, &region).await {
        Err(e) => {
            eprintln!("ecs-boot-fleet rollout: {e}");
            Ok(exit::SETUP)
        }
        Ok(s) => match engine::rollout(&cloud, &s).await {
            Err(e) => {
                eprintln!("ecs-boot-fleet rollout: {e}");
                Ok(exit::SETUP)
            }
            Ok(report) => {
                println!("{}", report.json());
                Ok(match report.outcome {
                    report::Outcome::Promoted => exit::PROMOTED,
                    report::Outcome::RolledBack => exit::ROLLED_BACK,
                    report::Outcome::NeedsAttention => exit::NEEDS_ATTENTION,
                    report::Outcome::Busy => exit::BUSY,
                })
            }
        },
    }
}

async fn settings(
    cloud: &impl cloud::Cloud,
    args: &RolloutArgs,
    region: &str,
) -> Result<engine::Settings, String> {
    let (ami, manifest_parameter) = match (&args.ami, &args.ami_from_manifest) {
        (Some(ami), _) => (ami.clone(), None),
        (None, Some(path)) => {
            let text = read_capped(path)?;
            let built = manifest::read(&text, region)
                .map_err(|e| format!("manifest {}: {e}", path.display()))?;
            log_manifest(&built);
            (built.ami, built.parameter)
        }
        (None, None) => return Err("pass --ami or --ami-from-manifest".into()),
    };
    if !manifest::is_ami_id(&ami) {
        return Err("--ami: not an AMI id (ami- and 8 or 17 hex digits)".into());
    }
    let group = match (&args.group, &args.environment) {
        (Some(g), _) => g.clone(),
        (None, Some(env)) => environment_group(cloud, env).await?,
        (None, None) => return Err("pass --group or --environment".into()),
    };
    Ok(engine::Settings {
        group,
        environment: args.environment.clone(),
        ami,
        parameter: args.ami_parameter.clone().or(manifest_parameter),
        min_healthy: args.min_healthy_percentage,
        max_healthy: args.max_healthy_percentage,
        warmup: args.instance_warmup,
        checkpoint_delay: args.checkpoint_delay,
        bake_time: args.bake_time,
        in_service_budget: args.in_service_budget,
        collect_timeout: args.collect_timeout,
        rollback_timeout: args.rollback_timeout,
        limits: gate::Limits {
            max_phase: args.max_boot_phase,
            max_boot: args.max_boot,
        },
        poll: args.poll_interval.max(Duration::from_millis(100)),
    })
}

fn log_manifest(b: &manifest::Built) {
    eprintln!(
        "rollout: manifest: {} (packer run {})",
        b.ami,
        b.run_uuid.as_deref().unwrap_or("unknown")
    );
}

fn read_capped(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| format!("manifest {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(manifest::MAX_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("manifest {}: {e}", path.display()))?;
    if text.len() > manifest::MAX_BYTES {
        return Err(format!(
            "manifest {}: larger than {} bytes",
            path.display(),
            manifest::MAX_BYTES
        ));
    }
    Ok(text)
}

/// The group of an environment: tagged ecs-boot:environment=NAME, else named NAME.
async fn environment_group(cloud: &impl cloud::Cloud, env: &str) -> Result<String, String> {
    let tagged = cloud.groups_of_environment(env).await?;
    match tagged.as_slice() {
        [one] => Ok(one.clone()),
        [] => match cloud.group(env).await? {
            Some(g) => Ok(g.name),
            None => Err(format!(
                "environment {env}: no Auto Scaling group tagged {ENVIRONMENT_TAG}={env}, and none named {env}"
            )),
        },
        many => Err(format!(
            "environment {env}: {} groups are tagged {ENVIRONMENT_TAG}={env} ({}); pass --group",
            many.len(),
            many.join(", ")
        )),
    }
}
