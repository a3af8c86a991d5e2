resource "aws_ecs_capacity_provider" "this" {
  name = var.name

  auto_scaling_group_provider {
    auto_scaling_group_arn         = aws_autoscaling_group.this.arn
    managed_termination_protection = var.managed_termination_protection ? "ENABLED" : "DISABLED"
    # Exactly one drainer: ECS managed draining only when ecs-boot's terminate hook is absent.
    managed_draining = var.drainer == "ecs-managed" ? "ENABLED" : "DISABLED"

    managed_scaling {
      status                    = "ENABLED"
      target_capacity           = var.managed_scaling.target_capacity
      minimum_scaling_step_size = var.managed_scaling.minimum_scaling_step_size
      maximum_scaling_step_size = var.managed_scaling.maximum_scaling_step_size
      instance_warmup_period    = var.managed_scaling.instance_warmup_period
    }
  }

  tags = var.tags
}

# Only for a cluster this module owns: the resource replaces the cluster's whole provider list, so
# on an existing cluster it would detach providers managed elsewhere. Attach
# output.capacity_provider_name there yourself.
resource "aws_ecs_cluster_capacity_providers" "this" {
  count = var.create_cluster ? 1 : 0

  cluster_name       = aws_ecs_cluster.this[0].name
  capacity_providers = [aws_ecs_capacity_provider.this.name]

  dynamic "default_capacity_provider_strategy" {
    for_each = var.default_capacity_provider_strategy ? [1] : []
    content {
      capacity_provider = aws_ecs_capacity_provider.this.name
      weight            = 1
      base              = 0
    }
  }
}
