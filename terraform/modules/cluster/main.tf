# One ECS cluster and its capacity-provider association. aws_ecs_cluster_capacity_providers owns
# the cluster's whole provider list, so exactly one place may manage it: this module. Every
# instance group (the module in ../../) hands its capacity provider in through capacity_providers.

resource "aws_ecs_cluster" "this" {
  #checkov:skip=CKV_AWS_65:Container Insights is var.container_insights, "enabled" by default and validated; checkov cannot follow the value through a module call.
  name = var.name

  setting {
    name  = "containerInsights"
    value = var.container_insights
  }

  tags = var.tags
}

locals {
  fargate_providers = concat(var.fargate ? ["FARGATE"] : [], var.fargate_spot ? ["FARGATE_SPOT"] : [])
  all_providers     = concat(var.capacity_providers, local.fargate_providers)
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = local.all_providers

  dynamic "default_capacity_provider_strategy" {
    for_each = var.default_capacity_provider_strategy
    content {
      capacity_provider = default_capacity_provider_strategy.value.capacity_provider
      weight            = default_capacity_provider_strategy.value.weight
      base              = default_capacity_provider_strategy.value.base
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for s in var.default_capacity_provider_strategy : contains(local.all_providers, s.capacity_provider)])
      error_message = "Every default_capacity_provider_strategy entry must name a provider in capacity_providers (or FARGATE/FARGATE_SPOT when enabled)."
    }
  }
}
