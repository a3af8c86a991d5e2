//! Readiness for placement: the node registers with `ecs-boot.ready=false` (ECS_INSTANCE_ATTRIBUTES,
//! config/layers.rs) and ecs-boot sets it `true` with PutAttributes once its launch is done,
//! just before the launch CONTINUE. Tasks placed with the constraint
//! `attribute:ecs-boot.ready == true` land only on nodes whose system containers are up.

use crate::error::{Error, Result};
use crate::sources::aws::{Aws, describe};
use aws_sdk_ecs::types::Attribute;

/// Sets `ecs-boot.ready` on this container instance. The full ARN as target needs no
/// `targetType` (ECS PutAttributes: the type is needed only with a short id).
pub async fn put_ready(aws: &Aws, cluster: &str, instance_arn: &str, ready: bool) -> Result<()> {
    let attribute = Attribute::builder()
        .name(crate::ecs_config::attribute::READY)
        .value(if ready { "true" } else { "false" })
        .target_id(instance_arn)
        .build()
        .map_err(|e| Error::Other(format!("PutAttributes request: {e}")))?;
    aws.ecs()
        .put_attributes()
        .cluster(cluster)
        .attributes(attribute)
        .send()
        .await
        .map_err(|e| Error::aws("PutAttributes", instance_arn, describe(&e)))?;
    Ok(())
}
