################################################################################
# An ECS service on ecs-boot instances: placed through the cluster's capacity providers, rolling
# updates a drain can satisfy, a circuit breaker that rolls back, tasks only on ready instances.
################################################################################

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  cluster_name = element(split("/", var.cluster_arn), 1)

  # ecs-boot's readiness attribute: instances whose boot finished (system containers up, launch
  # hook completed). Tasks placed before that could land on an instance that is then abandoned.
  ready_expression = "attribute:ecs-boot.ready == true"
  member_of = concat(
    var.require_ready_attribute ? [local.ready_expression] : [],
    var.placement_constraints,
  )

  # bridge: dynamic host port (0) so two tasks of the service fit on one instance during a
  # rolling update or a drain.
  port_mappings = var.container.port == null ? [] : [{
    containerPort = var.container.port
    hostPort      = var.network_mode == "awsvpc" ? var.container.port : 0
    protocol      = "tcp"
  }]

  container_definition = {
    name                   = var.container.name
    image                  = var.container.image
    essential              = true
    cpu                    = var.container.cpu
    memory                 = var.container.memory
    command                = var.container.command
    portMappings           = local.port_mappings
    readonlyRootFilesystem = var.container.readonly_root
    stopTimeout            = var.container.stop_timeout
    privileged             = false
    environment            = [for k in sort(keys(var.container.environment)) : { name = k, value = var.container.environment[k] }]
    secrets                = [for k in sort(keys(var.container.secrets)) : { name = k, valueFrom = var.container.secrets[k] }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = local.region
        awslogs-stream-prefix = var.name
      }
    }
  }
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["EC2"]
  network_mode             = var.network_mode
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode([{ for k, v in local.container_definition : k => v if v != null }])
  tags                     = var.tags
}

resource "aws_ecs_service" "this" {
  name                              = var.name
  cluster                           = var.cluster_arn
  task_definition                   = aws_ecs_task_definition.this.arn
  desired_count                     = var.desired_count
  health_check_grace_period_seconds = var.load_balancer == null ? null : var.health_check_grace_period_seconds
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  tags                              = var.tags

  dynamic "capacity_provider_strategy" {
    for_each = var.capacity_provider_strategy
    content {
      capacity_provider = capacity_provider_strategy.value.capacity_provider
      weight            = capacity_provider_strategy.value.weight
      base              = capacity_provider_strategy.value.base
    }
  }

  deployment_minimum_healthy_percent = var.deployment.minimum_healthy_percent
  deployment_maximum_percent         = var.deployment.maximum_percent

  deployment_controller {
    type = "ECS"
  }

  deployment_circuit_breaker {
    enable   = var.deployment.circuit_breaker
    rollback = var.deployment.rollback
  }

  dynamic "placement_constraints" {
    for_each = local.member_of
    content {
      type       = "memberOf"
      expression = placement_constraints.value
    }
  }

  ordered_placement_strategy {
    type  = "spread"
    field = "attribute:ecs.availability-zone"
  }

  ordered_placement_strategy {
    type  = "spread"
    field = "instanceId"
  }

  dynamic "network_configuration" {
    for_each = var.network == null ? [] : [var.network]
    content {
      subnets          = network_configuration.value.subnet_ids
      security_groups  = network_configuration.value.security_group_ids
      assign_public_ip = false
    }
  }

  dynamic "load_balancer" {
    for_each = var.load_balancer == null ? [] : [var.load_balancer]
    content {
      target_group_arn = aws_lb_target_group.this[0].arn
      container_name   = var.container.name
      container_port   = var.container.port
    }
  }

  lifecycle {
    # The pipeline deploys new task definition revisions (by image digest); Terraform must not
    # roll the service back to the first image at the next apply. desired_count belongs to
    # Application Auto Scaling or operators once the service exists.
    ignore_changes = [task_definition, desired_count]
  }

  # The listener rule makes the target group usable: CreateService refuses a target group that
  # no load balancer forwards to. The roles' policies must exist before tasks start.
  depends_on = [
    aws_lb_listener_rule.this,
    aws_iam_role_policy.execution,
  ]
}
