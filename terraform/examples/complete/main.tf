# A complete deployment: a VPC across several AZs (public subnets with NAT gateways, private
# subnets for the instances), then the ecs-boot group in the private subnets.

# Zones are named explicitly: a new AZ in the region must not silently reshape the network.
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = local.requested_azs
  }
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  requested_azs = coalesce(var.availability_zones, ["${var.region}a", "${var.region}b"])
  azs           = local.requested_azs
  az_count      = length(local.requested_azs)
}

module "ecs_boot" {
  source = "../../"

  name   = var.name
  vpc_id = aws_vpc.this.id
  # Through the route table associations: the NAT route exists before the first launch.
  subnet_ids = aws_route_table_association.private[*].subnet_id

  ami_ssm_parameter = var.ami_ssm_parameter
  instance_type     = "m6i.large"
  min_size          = 2
  max_size          = 6

  registry_auth = var.registry_auth

  instance_attributes = {
    "stack" = "production"
  }

  agent_settings = {
    "ECS_IMAGE_PULL_BEHAVIOR"    = "prefer-cached"
    "ECS_CONTAINER_STOP_TIMEOUT" = "2m"
  }

  terminate_hook = {
    heartbeat_timeout = 1200
  }

  alarm_emails = var.alarm_emails

  tags = {
    "Environment" = "production"
  }
}
