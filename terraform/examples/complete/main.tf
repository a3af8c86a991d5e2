# A complete deployment: a VPC across several AZs (public subnets with NAT gateways, private
# subnets for the instances), one ECS cluster, and two instance groups in it: on-demand for the
# base load and spot (several instance types) above it.

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

# The cluster owns its capacity-provider association once, for every group in it.
module "cluster" {
  source = "../../modules/cluster"

  name               = var.name
  capacity_providers = [module.on_demand.capacity_provider_name, module.spot.capacity_provider_name]

  # Base tasks on on-demand, the rest mostly on spot.
  default_capacity_provider_strategy = [
    { capacity_provider = module.on_demand.capacity_provider_name, base = 2, weight = 1 },
    { capacity_provider = module.spot.capacity_provider_name, weight = 3 },
  ]

  tags = { "Environment" = "production" }
}

module "on_demand" {
  source = "../../"

  name           = "${var.name}-od"
  create_cluster = false
  cluster_name   = module.cluster.name

  vpc_id = aws_vpc.this.id
  # Through the route table associations: the NAT route exists before the first launch.
  subnet_ids = aws_route_table_association.private[*].subnet_id

  ami_ssm_parameter = var.ami_ssm_parameter
  instance_type     = "m6i.large"
  min_size          = 0
  max_size          = 6

  registry_auth  = var.registry_auth
  drain_deadline = 1200

  instance_attributes = {
    "stack"    = "production"
    "capacity" = "on-demand"
  }

  agent_settings = {
    "ECS_IMAGE_PULL_BEHAVIOR"    = "prefer-cached"
    "ECS_CONTAINER_STOP_TIMEOUT" = "2m"
  }

  alarm_emails = var.alarm_emails

  tags = {
    "Environment" = "production"
  }
}

module "spot" {
  source = "../../"

  name           = "${var.name}-spot"
  create_cluster = false
  cluster_name   = module.cluster.name

  vpc_id     = aws_vpc.this.id
  subnet_ids = aws_route_table_association.private[*].subnet_id

  ami_ssm_parameter = var.ami_ssm_parameter
  min_size          = 0
  max_size          = 12

  mixed_instances = {
    instance_types                           = ["m6i.large", "m5.large", "m5a.large", "m6a.large"]
    on_demand_percentage_above_base_capacity = 0
  }

  registry_auth = var.registry_auth
  # A spot interruption leaves 2 minutes whatever the deadline; scale-in and refreshes get this.
  drain_deadline = 600

  instance_attributes = {
    "stack"    = "production"
    "capacity" = "spot"
  }

  # The on-demand group already alerts on the cluster's failed tasks.
  task_failure_alerts = false
  alarm_emails        = var.alarm_emails

  tags = {
    "Environment" = "production"
  }
}
