//! `ecs-boot fleet status`: every instance's `ecs-boot status --json`, collected over SSM Run
//! Command from an operator's machine, as one table (failures first) or one JSON document.
//!
//! `targets` turns --asg / --cluster / --instance-ids into instance ids, `collect` runs the
//! command (batches of ≤ 50, bounded polling, a deadline), `output` reads what came back,
//! `render` and `progress` are pure views.

mod collect;
mod output;
mod pace;
mod progress;
mod render;
#[cfg(feature = "rollout")]
pub mod rollout;
mod targets;

use crate::sources::aws::Aws;
use clap::{ArgGroup, Args};
use std::time::Duration;
use thiserror::Error;

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["asg", "cluster", "instance_ids"])))]
pub struct FleetArgs {
    /// Every instance of this Auto Scaling group
    #[arg(long, value_name = "NAME")]
    pub asg: Option<String>,
    /// Every container instance registered in this ECS cluster
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// These instances (space- or comma-separated)
    #[arg(long, value_name = "ID", num_args = 1.., value_delimiter = ',')]
    pub instance_ids: Vec<String>,
    /// AWS region [default: the SDK's chain: AWS_REGION, then the profile]
    #[arg(long)]
    pub region: Option<String>,
    /// Give up on instances that have not answered by then; they are reported as timed_out
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// GetCommandInvocation requests in flight at once
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Also write command output to this S3 bucket, and read it from there when SSM's
    /// 24,000-character inline output is truncated
    #[arg(long, value_name = "BUCKET")]
    pub output_s3_bucket: Option<String>,
    /// Key prefix for --output-s3-bucket
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "ecs-boot-fleet",
        requires = "output_s3_bucket"
    )]
    pub output_s3_key_prefix: String,
    /// One JSON document on stdout instead of the table
    #[arg(long)]
    pub json: bool,
}

/// Why the fleet could not be asked at all (per-instance problems are rows, not errors).
#[derive(Debug, Error)]
pub enum FleetError {
    #[error("cannot list the instances of Auto Scaling group {asg}: {problem}")]
    Asg { asg: String, problem: String },
    #[error("Auto Scaling group {0} does not exist in this region")]
    NoSuchAsg(String),
    #[error("cannot list the container instances of cluster {cluster}: {problem}")]
    Cluster { cluster: String, problem: String },
    #[error("no instances to ask: {0}")]
    Empty(String),
    #[error("no AWS region: pass --region or set AWS_REGION")]
    NoRegion,
}

impl FleetError {
    pub fn hint(&self) -> &'static str {
        match self {
            FleetError::Asg { .. } | FleetError::Cluster { .. } => {
                "check your credentials and region, and that you may call autoscaling:DescribeAutoScalingGroups / ecs:ListContainerInstances and ecs:DescribeContainerInstances"
            }
            FleetError::NoSuchAsg(_) => "check the group name and --region",
            FleetError::Empty(_) => "nothing is running there yet; check the name and --region",
            FleetError::NoRegion => "pass --region us-east-1 (or configure a profile region)",
        }
    }
}

/// Exit codes: every instance healthy, something failed or unreachable, some still in progress.
/// 2 means the fleet could not be asked at all (bad target, no credentials).
pub mod exit {
    pub const HEALTHY: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const SETUP: i32 = 2;
    pub const IN_PROGRESS: i32 = 3;
}

pub async fn run(args: FleetArgs) -> crate::error::Result<i32> {
    match status(args).await {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("ecs-boot fleet: {e}\n  hint: {}", e.hint());
            Ok(exit::SETUP)
        }
    }
}

async fn status(args: FleetArgs) -> Result<i32, FleetError> {
    let aws = Aws::load_default(args.region.as_deref()).await;
    if aws.region().is_none() {
        return Err(FleetError::NoRegion);
    }
    let target = if let Some(asg) = &args.asg {
        targets::Target::Asg(asg.clone())
    } else if let Some(cluster) = &args.cluster {
        targets::Target::Cluster(cluster.clone())
    } else {
        targets::Target::Instances(args.instance_ids.clone())
    };
    let ids = targets::resolve(&aws, &target).await?;
    if ids.is_empty() {
        return Err(FleetError::Empty(target.to_string()));
    }
    let options = collect::Options {
        timeout: args.timeout,
        concurrency: args.concurrency as usize,
        s3_output: args
            .output_s3_bucket
            .clone()
            .map(|bucket| (bucket, args.output_s3_key_prefix.clone())),
    };
    let mut progress = progress::Progress::stderr(ids.len());
    let results = collect::collect(&aws, ids, &options, &mut progress).await;
    progress.finish();
    let rows = render::rows(&results);
    if args.json {
        println!("{}", render::json(&rows));
    } else {
        print!("{}", render::table(&rows));
    }
    Ok(render::exit_code(&rows))
}
