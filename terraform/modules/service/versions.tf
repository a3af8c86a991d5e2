terraform {
  # 1.9: variable validations may refer to other variables (the deregistration delay is checked
  # against drain_deadline_seconds, the deployment percentages against desired_count).
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.60: ECS deployment circuit breaker, capacity provider strategy on services, and
      # aws_ecs_service availability_zone_rebalancing are all there.
      version = ">= 5.60, < 7.0"
    }
  }
}
