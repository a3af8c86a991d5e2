output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}

output "private_subnet_ids" {
  description = "Private subnets the instances run in."
  value       = module.network.private_subnet_ids
}

output "autoscaling_group_names" {
  description = "Names of the ecs-boot Auto Scaling Groups (on-demand, spot)."
  value       = [module.on_demand.autoscaling_group_name, module.spot.autoscaling_group_name]
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.cluster.cluster_name
}

output "capacity_providers" {
  description = "Capacity providers to use in service strategies (associated with the cluster)."
  value       = module.cluster.capacity_providers
}

output "task_failure_topic_arn" {
  description = "SNS topic receiving failed tasks."
  value       = module.on_demand.task_failure_topic_arn
}
