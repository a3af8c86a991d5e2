output "autoscaling_group_name" {
  description = "Name of the ecs-boot Auto Scaling Group."
  value       = module.ecs_boot.autoscaling_group_name
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.ecs_boot.cluster_name
}
