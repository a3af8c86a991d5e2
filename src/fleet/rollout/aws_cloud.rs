//! The real `Cloud`: EC2 (launch template versions, images, instance tags), Auto Scaling (group,
//! instance refresh), SSM (the AMI parameter) and the fleet collector (each instance's
//! `ecs-boot status --json` over SSM Run Command). Errors name the call, never a payload.

use super::cloud::{Cloud, Group, Preferences, Refresh, Result, Version};
use crate::fleet::collect;
use crate::fleet::output::InstanceResult;
use crate::fleet::progress::Progress;
use crate::sources::aws::{Aws, describe, error_code};
use std::collections::HashMap;
use std::time::Duration;

pub struct AwsCloud {
    aws: Aws,
    ec2: aws_sdk_ec2::Client,
    asg: aws_sdk_autoscaling::Client,
    ssm: aws_sdk_ssm::Client,
}

impl AwsCloud {
    pub fn new(aws: Aws) -> AwsCloud {
        AwsCloud {
            ec2: aws.ec2(),
            asg: aws.autoscaling(),
            ssm: aws.ssm(),
            aws,
        }
    }
}

macro_rules! described {
    ($what:expr) => {
        |e| format!("{}: {}", $what, describe(&e))
    };
}

impl Cloud for AwsCloud {
    async fn group(&self, name: &str) -> Result<Option<Group>> {
        let out = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(described!("DescribeAutoScalingGroups"))?;
        let Some(g) = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
        else {
            return Ok(None);
        };
        let lt = g.launch_template();
        Ok(Some(Group {
            name: name.to_string(),
            desired: g.desired_capacity().unwrap_or(0).max(0) as u32,
            template_id: lt.and_then(|t| t.launch_template_id()).map(str::to_string),
            template_version: lt.and_then(|t| t.version()).map(str::to_string),
            mixed_instances: g.mixed_instances_policy().is_some(),
            instances: g
                .instances()
                .iter()
                .filter_map(|i| {
                    Some((
                        i.instance_id()?.to_string(),
                        i.lifecycle_state()?.as_str().to_string(),
                    ))
                })
                .collect(),
        }))
    }

    async fn groups_of_environment(&self, environment: &str) -> Result<Vec<String>> {
        use aws_sdk_autoscaling::types::Filter;
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .asg
                .describe_auto_scaling_groups()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{}", super::ENVIRONMENT_TAG))
                        .values(environment)
                        .build(),
                )
                .set_next_token(token)
                .send()
                .await
                .map_err(described!("DescribeAutoScalingGroups"))?;
            names.extend(
                out.auto_scaling_groups()
                    .iter()
                    .filter_map(|g| g.auto_scaling_group_name().map(str::to_string)),
            );
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(names);
            }
        }
    }

    async fn versions(&self, template_id: &str) -> Result<Vec<Version>> {
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .ec2
                .describe_launch_template_versions()
                .launch_template_id(template_id)
                .set_next_token(token)
                .send()
                .await
                .map_err(described!("DescribeLaunchTemplateVersions"))?;
            for v in out.launch_template_versions() {
                if let Some(number) = v.version_number() {
                    found.push(Version {
                        number,
                        image_id: v
                            .launch_template_data()
                            .and_then(|d| d.image_id())
                            .unwrap_or_default()
                            .to_string(),
                        description: v.version_description().map(str::to_string),
                    });
                }
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                found.sort_by_key(|v| v.number);
                return Ok(found);
            }
        }
    }

    async fn default_version(&self, template_id: &str) -> Result<i64> {
        let out = self
            .ec2
            .describe_launch_templates()
            .launch_template_ids(template_id)
            .send()
            .await
            .map_err(described!("DescribeLaunchTemplates"))?;
        out.launch_templates()
            .first()
            .and_then(|t| t.default_version_number())
            .ok_or_else(|| format!("DescribeLaunchTemplates: no template {template_id}"))
    }

    async fn create_version(
        &self,
        template_id: &str,
        source: &Version,
        image_id: &str,
    ) -> Result<i64> {
        use aws_sdk_ec2::types::RequestLaunchTemplateData;
        let out = self
            .ec2
            .create_launch_template_version()
            .launch_template_id(template_id)
            .source_version(source.number.to_string())
            .set_version_description(source.description.clone())
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id(image_id)
                    .build(),
            )
            .send()
            .await
            .map_err(described!("CreateLaunchTemplateVersion"))?;
        out.launch_template_version()
            .and_then(|v| v.version_number())
            .ok_or_else(|| "CreateLaunchTemplateVersion: no version number in the answer".into())
    }

    async fn set_default_version(&self, template_id: &str, version: i64) -> Result<()> {
        self.ec2
            .modify_launch_template()
            .launch_template_id(template_id)
            .default_version(version.to_string())
            .send()
            .await
            .map_err(described!("ModifyLaunchTemplate"))?;
        Ok(())
    }

    async fn image_architecture(&self, ami: &str) -> Result<Option<String>> {
        let out = self
            .ec2
            .describe_images()
            .image_ids(ami)
            .send()
            .await
            .map_err(described!("DescribeImages"))?;
        Ok(out
            .images()
            .first()
            .and_then(|i| i.architecture())
            .map(|a| a.as_str().to_string()))
    }

    async fn parameter(&self, name: &str) -> Result<Option<String>> {
        match self.ssm.get_parameter().name(name).send().await {
            Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
            Err(e) if error_code(&e).as_deref() == Some("ParameterNotFound") => Ok(None),
            Err(e) => Err(format!("GetParameter {name}: {}", describe(&e))),
        }
    }

    async fn put_parameter(&self, name: &str, value: &str) -> Result<()> {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .data_type("aws:ec2:image")
            .overwrite(true)
            .send()
            .await
            .map_err(|e| format!("PutParameter {name}: {}", describe(&e)))?;
        Ok(())
    }

    async fn refreshes(&self, group: &str) -> Result<Vec<Refresh>> {
        let out = self
            .asg
            .describe_instance_refreshes()
            .auto_scaling_group_name(group)
            .send()
            .await
            .map_err(described!("DescribeInstanceRefreshes"))?;
        Ok(out
            .instance_refreshes()
            .iter()
            .map(|r| {
                let lt = r.desired_configuration().and_then(|d| d.launch_template());
                Refresh {
                    id: r.instance_refresh_id().unwrap_or_default().to_string(),
                    status: r
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    reason: r.status_reason().map(str::to_string),
                    template_id: lt.and_then(|t| t.launch_template_id()).map(str::to_string),
                    version: lt.and_then(|t| t.version()).map(str::to_string),
                }
            })
            .collect())
    }

    async fn start_refresh(
        &self,
        group: &str,
        template_id: &str,
        version: i64,
        prefs: &Preferences,
    ) -> Result<String> {
        use aws_sdk_autoscaling::types::{
            DesiredConfiguration, LaunchTemplateSpecification, RefreshPreferences,
            ScaleInProtectedInstances,
        };
        let mut p = RefreshPreferences::builder()
            .min_healthy_percentage(prefs.min_healthy as i32)
            .max_healthy_percentage(prefs.max_healthy as i32)
            .skip_matching(true)
            .auto_rollback(true)
            .bake_time(prefs.bake_time as i32)
            // Managed termination protection protects every instance; a rollout replaces them.
            .scale_in_protected_instances(ScaleInProtectedInstances::Refresh);
        if !prefs.checkpoints.is_empty() {
            p = p
                .set_checkpoint_percentages(Some(
                    prefs.checkpoints.iter().map(|c| *c as i32).collect(),
                ))
                .checkpoint_delay(prefs.checkpoint_delay as i32);
        }
        if let Some(w) = prefs.warmup {
            p = p.instance_warmup(w as i32);
        }
        let out = self
            .asg
            .start_instance_refresh()
            .auto_scaling_group_name(group)
            .desired_configuration(
                DesiredConfiguration::builder()
                    .launch_template(
                        LaunchTemplateSpecification::builder()
                            .launch_template_id(template_id)
                            .version(version.to_string())
                            .build(),
                    )
                    .build(),
            )
            .preferences(p.build())
            .send()
            .await
            .map_err(described!("StartInstanceRefresh"))?;
        Ok(out.instance_refresh_id().unwrap_or_default().to_string())
    }

    async fn rollback_refresh(&self, group: &str) -> Result<()> {
        match self
            .asg
            .rollback_instance_refresh()
            .auto_scaling_group_name(group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already rolling back (AutoRollback) or ended: the caller reads the status.
            Err(e) if error_code(&e).as_deref() == Some("ActiveInstanceRefreshNotFound") => Ok(()),
            Err(e) => Err(format!("RollbackInstanceRefresh: {}", describe(&e))),
        }
    }

    async fn set_group_version(&self, group: &str, template_id: &str, version: i64) -> Result<()> {
        use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
        self.asg
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(template_id)
                    .version(version.to_string())
                    .build(),
            )
            .send()
            .await
            .map_err(described!("UpdateAutoScalingGroup"))?;
        Ok(())
    }

    async fn instance_versions(&self, ids: &[String]) -> Result<HashMap<String, i64>> {
        let mut found = HashMap::new();
        for chunk in ids.chunks(100) {
            let out = self
                .ec2
                .describe_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(described!("DescribeInstances"))?;
            for inst in out.reservations().iter().flat_map(|r| r.instances()) {
                let version = inst
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("aws:ec2launchtemplate:version"))
                    .and_then(|t| t.value())
                    .and_then(|v| v.parse().ok());
                if let (Some(id), Some(v)) = (inst.instance_id(), version) {
                    found.insert(id.to_string(), v);
                }
            }
        }
        Ok(found)
    }

    async fn boot_reports(&self, ids: Vec<String>, timeout: Duration) -> Vec<InstanceResult> {
        let options = collect::Options {
            timeout,
            concurrency: 16,
            s3_output: None,
        };
        let mut progress = Progress::stderr(ids.len());
        let results = collect::collect(&self.aws, ids, &options, &mut progress).await;
        progress.finish();
        results
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}
