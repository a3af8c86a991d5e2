locals {
  # AWS refuses capacity provider names starting with "aws", "ecs" or "fargate" (any case).
  reserved_provider_name = can(regex("^(?i)(aws|ecs|fargate)", var.name))
  capacity_provider_name = coalesce(var.capacity_provider_name, local.reserved_provider_name ? "cp-${var.name}" : var.name)
}

resource "aws_ecs_capacity_provider" "this" {
  name = local.capacity_provider_name

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
