output "service_name" {
  description = "Name of the ECS service (the pipeline's ECS deploy action: ServiceName)."
  value       = aws_ecs_service.this.name
}

output "service_arn" {
  description = "ARN of the ECS service."
  value       = aws_ecs_service.this.id
}

output "cluster_name" {
  description = "Name of the cluster the service runs in (the pipeline's ECS deploy action: ClusterName)."
  value       = local.cluster_name
}

output "container_name" {
  description = "Name of the container; imagedefinitions.json names the image for this container."
  value       = var.container.name
}

output "task_definition_family" {
  description = "Task definition family; the ECS deploy action registers new revisions of it."
  value       = aws_ecs_task_definition.this.family
}

output "task_execution_role_arn" {
  description = "ARN of the task execution role (the deploy role needs iam:PassRole on it)."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "ARN of the task role (the deploy role needs iam:PassRole on it)."
  value       = aws_iam_role.task.arn
}

output "pass_role_arns" {
  description = "The roles an ECS deploy action passes when it registers a revision: scope the environment deploy role's iam:PassRole to exactly these."
  value       = [aws_iam_role.execution.arn, aws_iam_role.task.arn]
}

output "log_group_name" {
  description = "Name of the service's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "target_group_arn" {
  description = "ARN of the target group; null without load_balancer."
  value       = one(aws_lb_target_group.this[*].arn)
}

output "pipeline_deploy_target" {
  description = "What the pipeline module's ECS deploy action needs for this service, as one object: pass it in the environment's deploy setting."
  value = {
    cluster_name   = local.cluster_name
    service_name   = aws_ecs_service.this.name
    container_name = var.container.name
    pass_role_arns = [aws_iam_role.execution.arn, aws_iam_role.task.arn]
  }
}
