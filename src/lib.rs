//! ecs-boot: brings an ECS container instance from power-on to in service, and out again without
//! losing a task. Two binaries share this library: `ecs-boot`, the agent baked into the AMI
//! (src/main.rs), and `ecs-boot-fleet`, the operator's tool for many instances
//! (src/bin/ecs-boot-fleet.rs), which the AMI does not carry.
//!
//! Layers, each depending only on those above it:
//! - `util`: host paths, atomic files, retries, logging, systemd notification
//! - `sources`: IMDS, S3/SSM objects, AWS clients, the ECS agent's introspection API
//! - `ecs_config`: the agent variable table, rendering and writing ecs.config
//! - `config`: the baked config, the trusted config.d layer, fragments and tags, merged in layers
//! - `containers`: system containers on the local Docker engine
//! - `status`: the state file, the status report, the gate
//! - `evidence`: the flight recorder (a failed boot's evidence to S3)
//! - `metrics`: boot, hook and drain metrics to CloudWatch; the CloudWatch agent's config
//! - `lifecycle`: the instance's life, from boot to terminate hook
//! - `cli`: the agent's command line; `fleet`: the operator's

// See main.rs: the lifecycle loop's future is deep.
#![recursion_limit = "256"]

pub mod cli;
pub mod config;
pub mod containers;
pub mod ecs_config;
pub mod error;
pub mod evidence;
pub mod fleet;
pub mod lifecycle;
pub mod metrics;
#[cfg(test)]
mod proptests;
pub mod sources;
pub mod status;
pub mod util;
