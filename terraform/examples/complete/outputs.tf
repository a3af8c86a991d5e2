output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Private subnets the instances run in."
  value       = aws_subnet.private[*].id
}

output "autoscaling_group_name" {
  description = "Name of the ecs-boot Auto Scaling Group."
  value       = module.ecs_boot.autoscaling_group_name
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.ecs_boot.cluster_name
}

output "capacity_provider_name" {
  description = "Capacity provider to use in service strategies."
  value       = module.ecs_boot.capacity_provider_name
}

output "task_failure_topic_arn" {
  description = "SNS topic receiving failed tasks."
  value       = module.ecs_boot.task_failure_topic_arn
}
