output "autoscaling_group_name" {
  description = "Name of the Auto Scaling Group."
  value       = aws_autoscaling_group.this.name
}

output "autoscaling_group_arn" {
  description = "ARN of the Auto Scaling Group."
  value       = aws_autoscaling_group.this.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster the instances join."
  # Own cluster: after its capacity providers are associated, so services can use them at once.
  value = var.create_cluster ? module.cluster[0].cluster_name : var.cluster_name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster the instances join."
  value       = var.create_cluster ? module.cluster[0].cluster_arn : local.cluster_arn
}

output "capacity_provider_name" {
  description = "Name of the capacity provider (attach it yourself when create_cluster is false)."
  # Own cluster: once associated (the provider is usable in a strategy only then). Otherwise hand it
  # to modules/cluster's capacity_providers.
  value = var.create_cluster ? one([for p in module.cluster[0].capacity_providers : p if p == aws_ecs_capacity_provider.this.name]) : aws_ecs_capacity_provider.this.name
}

output "launch_template_id" {
  description = "ID of the launch template."
  value       = aws_launch_template.this.id
}

output "launch_hook_name" {
  description = "Name of the launch lifecycle hook ecs-boot completes."
  value       = aws_autoscaling_lifecycle_hook.launch.name
}

output "terminate_hook_name" {
  description = "Name of ecs-boot's terminate lifecycle hook; null when ECS managed draining drains instead."
  value       = one(aws_autoscaling_lifecycle_hook.terminate[*].name)
}

output "iam_role_name" {
  description = "Name of the instance IAM role."
  value       = aws_iam_role.this.name
}

output "iam_role_arn" {
  description = "ARN of the instance IAM role."
  value       = aws_iam_role.this.arn
}

output "instance_profile_name" {
  description = "Name of the instance profile."
  value       = aws_iam_instance_profile.this.name
}

output "instance_profile_arn" {
  description = "ARN of the instance profile."
  value       = aws_iam_instance_profile.this.arn
}

output "security_group_id" {
  description = "ID of the instances' security group (add rules to it, or use ingress_rules)."
  value       = aws_security_group.this.id
}

output "log_group_name" {
  description = "Name of the CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.arn
}

output "task_failure_topic_arn" {
  description = "ARN of the SNS topic receiving tasks that stopped with a non-zero exit code."
  value       = aws_sns_topic.task_failures.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the log group and topic."
  value       = local.kms_key_arn
}

output "user_data_config" {
  description = "The TOML that user data writes to /etc/ecs-boot/config.d/50-terraform.toml (the trusted channel)."
  value       = local.config_toml
}

output "ami_id" {
  description = "AMI id the launch template uses (from ami_id or the SSM parameter)."
  value       = local.ami_id
}
