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
  value       = local.cluster_name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster the instances join."
  value       = local.cluster_arn
}

output "capacity_provider_name" {
  description = "Name of the capacity provider (attach it yourself when create_cluster is false)."
  value       = aws_ecs_capacity_provider.this.name
}

output "launch_template_id" {
  description = "ID of the launch template."
  value       = aws_launch_template.this.id
}

output "launch_hook_name" {
  description = "Name of the launch lifecycle hook ecs-boot completes."
  value       = local.launch_hook_name
}

output "terminate_hook_name" {
  description = "Name of ecs-boot's terminate lifecycle hook; null when ECS managed draining drains instead."
  value       = local.terminate_hook_enabled ? local.terminate_hook_name : null
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
