//! What ecs-boot reads from outside the instance's disk: instance metadata (IMDSv2), objects in S3
//! and SSM (registry credentials, config fragments), AWS API clients, and the local ECS agent's
//! introspection API. Every answer here is untrusted input: size-capped and never quoted in errors.

pub mod aws;
pub mod capped;
pub mod ecs_agent;
pub mod https;
pub mod imds;
pub mod location;
pub mod registry_auth;
