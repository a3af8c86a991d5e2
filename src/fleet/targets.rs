//! What `--asg`, `--cluster` or `--instance-ids` mean as EC2 instance ids.

use super::FleetError;
use crate::sources::aws::{Aws, describe};
use std::collections::HashSet;
use std::fmt;

pub enum Target {
    Asg(String),
    Cluster(String),
    Instances(Vec<String>),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Asg(name) => write!(f, "Auto Scaling group {name} has no instances"),
            Target::Cluster(name) => write!(f, "cluster {name} has no container instances"),
            Target::Instances(_) => write!(f, "no --instance-ids given"),
        }
    }
}

/// Instance ids in the order found, without duplicates.
pub async fn resolve(aws: &Aws, target: &Target) -> Result<Vec<String>, FleetError> {
    let ids = match target {
        Target::Asg(name) => asg_instances(aws, name).await?,
        Target::Cluster(name) => cluster_instances(aws, name).await?,
        Target::Instances(ids) => ids
            .iter()
            .flat_map(|s| s.split([',', ' ']))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    };
    Ok(dedup(ids))
}

fn dedup(ids: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

async fn asg_instances(aws: &Aws, name: &str) -> Result<Vec<String>, FleetError> {
    let out = aws
        .autoscaling()
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| FleetError::Asg {
            asg: name.into(),
            problem: describe(&e),
        })?;
    let group = out
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(name))
        .ok_or_else(|| FleetError::NoSuchAsg(name.into()))?;
    Ok(group
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect())
}

async fn cluster_instances(aws: &Aws, cluster: &str) -> Result<Vec<String>, FleetError> {
    let fail = |problem: String| FleetError::Cluster {
        cluster: cluster.into(),
        problem,
    };
    let ecs = aws.ecs();
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let out = ecs
            .list_container_instances()
            .cluster(cluster)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| fail(describe(&e)))?;
        arns.extend(out.container_instance_arns().iter().cloned());
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let mut ids = Vec::with_capacity(arns.len());
    // DescribeContainerInstances takes at most 100 ARNs.
    for chunk in arns.chunks(100) {
        let out = ecs
            .describe_container_instances()
            .cluster(cluster)
            .set_container_instances(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| fail(describe(&e)))?;
        ids.extend(
            out.container_instances()
                .iter()
                .filter_map(|c| c.ec2_instance_id().map(str::to_string)),
        );
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_go_and_order_stays() {
        let ids = ["i-2", "i-1", "i-2", "i-3"].map(String::from).to_vec();
        assert_eq!(dedup(ids), ["i-2", "i-1", "i-3"]);
    }
}
