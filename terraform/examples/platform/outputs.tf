output "url" {
  description = "Where the service answers (point your certificate's DNS name at it)."
  value       = "https://${aws_lb.this.dns_name}"
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.cluster.cluster_name
}

output "repository_url" {
  description = "Push release images here: docker push <url>:release-<version>."
  value       = module.web_images.ecr_repository_url
}

output "pipeline_name" {
  description = "Name of the image pipeline."
  value       = module.web_images.pipeline_name
}

output "pipeline_stages" {
  description = "Stages of the image pipeline, in order."
  value       = module.web_images.stage_names
}

output "pipeline_role_arn" {
  description = "The role a production account's deploy role must trust (var.prod)."
  value       = module.web_images.pipeline_role_arn
}

output "service_name" {
  description = "Name of the ECS service."
  value       = module.web.service_name
}
