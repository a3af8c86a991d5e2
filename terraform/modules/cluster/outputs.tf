# Both wait for the provider association: a service created from these outputs finds its capacity
# providers attached.
output "cluster_name" {
  description = "Name of the cluster, once its capacity providers are associated."
  value       = aws_ecs_cluster_capacity_providers.this.cluster_name
}

output "cluster_arn" {
  description = "ARN of the cluster, once its capacity providers are associated."
  value       = aws_ecs_cluster.this.arn
  depends_on  = [aws_ecs_cluster_capacity_providers.this]
}

output "capacity_providers" {
  description = "The associated capacity providers (wire these into service strategies)."
  value       = aws_ecs_cluster_capacity_providers.this.capacity_providers
}

# For the instance groups: the cluster itself, without waiting for the association (which needs
# the groups' capacity providers first).
output "name" {
  description = "Name of the cluster as soon as it exists (for the instance groups; services use cluster_name)."
  value       = aws_ecs_cluster.this.name
}

output "arn" {
  description = "ARN of the cluster as soon as it exists (for the instance groups; services use cluster_arn)."
  value       = aws_ecs_cluster.this.arn
}
