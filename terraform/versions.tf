terraform {
  # 1.5: optional() object attributes with defaults and check-friendly preconditions.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.60: capacity provider managed_draining, instance refresh max_healthy_percentage and
      # scale_in_protected_instances are all available.
      version = ">= 5.60, < 7.0"
    }
  }
}
