terraform {
  # 1.9: the service and pipeline modules compare variables in their validations.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = { "Example" = "ecs-boot-platform" }
  }
}
