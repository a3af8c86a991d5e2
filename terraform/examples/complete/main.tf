# A complete deployment: a VPC across several AZs (modules/network: public subnets with NAT
# gateways, private subnets for the instances, flow logs), one ECS cluster, and two instance groups
# in it: on-demand for the base load and spot (several instance types) above it.

module "network" {
  source = "../../modules/network"

  name               = var.name
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  flow_logs = {
    # The role name this example has always used (the module's default is a unique name): a new
    # role would replace the flow log itself.
    iam_role_name = "${var.name}-flow-logs"
  }
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

  vpc_id = module.network.vpc_id
  # Known once each subnet's route table (with its NAT route) is associated: the way to the AWS
  # APIs exists before the first launch.
  subnet_ids = module.network.private_subnet_ids

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

  vpc_id     = module.network.vpc_id
  subnet_ids = module.network.private_subnet_ids

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
