# From an empty account to a deployed service: a VPC, one ECS cluster with two ecs-boot instance
# groups (on-demand for the base, spot above it), a load balancer, one service on the cluster's
# capacity providers, and its image pipeline (push a release tag -> dev -> approval -> prod).

data "aws_caller_identity" "current" {}

module "network" {
  source = "../../modules/network"

  name               = var.name
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  flow_logs = {
    # The name this example has always used: a new name would replace the group, and a year of
    # flow logs with it.
    log_group_name = "/vpc/${var.name}"
  }
}

locals {
  # ecs-boot's drain deadline per group; the service's load balancer must deregister a task well
  # within the shorter one.
  drain_deadline = { on_demand = 1200, spot = 600 }
}

# The cluster owns its capacity-provider association once, for both groups.
module "cluster" {
  source = "../../modules/cluster"

  name               = var.name
  capacity_providers = [module.on_demand.capacity_provider_name, module.spot.capacity_provider_name]

  default_capacity_provider_strategy = [
    { capacity_provider = module.on_demand.capacity_provider_name, base = 1, weight = 1 },
    { capacity_provider = module.spot.capacity_provider_name, weight = 3 },
  ]
}

module "on_demand" {
  source = "../../"

  name              = "${var.name}-od"
  create_cluster    = false
  cluster_name      = module.cluster.name
  vpc_id            = module.network.vpc_id
  subnet_ids        = module.network.private_subnet_ids
  ami_ssm_parameter = var.ami_ssm_parameter
  instance_type     = "m6i.large"
  min_size          = 1
  max_size          = 6
  drain_deadline    = local.drain_deadline.on_demand

  # The load balancer reaches the tasks' dynamic host ports (bridge networking).
  ingress_rules = {
    alb = {
      description                  = "load balancer to task host ports"
      from_port                    = 32768
      to_port                      = 65535
      referenced_security_group_id = aws_security_group.alb.id
    }
  }
}

module "spot" {
  source = "../../"

  name              = "${var.name}-spot"
  create_cluster    = false
  cluster_name      = module.cluster.name
  vpc_id            = module.network.vpc_id
  subnet_ids        = module.network.private_subnet_ids
  ami_ssm_parameter = var.ami_ssm_parameter
  min_size          = 0
  max_size          = 12
  # A spot interruption leaves 2 minutes whatever the deadline; scale-in and refreshes get this.
  drain_deadline = local.drain_deadline.spot

  mixed_instances = {
    instance_types                           = ["m6i.large", "m5.large", "m5a.large", "m6a.large"]
    on_demand_percentage_above_base_capacity = 0
  }

  ingress_rules = {
    alb = {
      description                  = "load balancer to task host ports"
      from_port                    = 32768
      to_port                      = 65535
      referenced_security_group_id = aws_security_group.alb.id
    }
  }

  # The on-demand group already alerts on the cluster's failed tasks.
  task_failure_alerts = false
}
