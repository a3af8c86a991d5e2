data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# The Packer build publishes the AMI id to /ecs-boot/ami/<architecture>; reading it at plan time
# turns a new image into a launch template version, which instance refresh rolls out.
data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0
  name  = local.ami_ssm_parameter
}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  ami_ssm_parameter = coalesce(var.ami_ssm_parameter, "/ecs-boot/ami/${var.architecture}")
  ami_id            = var.ami_id != null ? var.ami_id : data.aws_ssm_parameter.ami[0].insecure_value

  # The cluster: this module's own (create_cluster) or one made by modules/cluster or elsewhere.
  # Referencing the cluster resource (not a string) orders the group after it on create and before
  # it on destroy: instances drain while their cluster still exists.
  cluster_name = var.create_cluster ? module.cluster[0].name : var.cluster_name
  cluster_arn  = var.create_cluster ? module.cluster[0].arn : "arn:${local.partition}:ecs:${local.region}:${local.account_id}:cluster/${var.cluster_name}"

  # Tags place and name instances, nothing more: everything else reaches ecs-boot through the
  # trusted channel (user data, user_data.tf).
  # ecs-boot:config names a fragment that may set placement and tuning keys only, and only from
  # under [trust] fragment_prefixes (fragment_locations, in user data).
  placement_tags = merge(
    { for name, value in var.instance_attributes : "ecs-boot:attribute:${name}" => value },
    var.config_location != null ? { "ecs-boot:config" = var.config_location } : {},
  )

  # ECS requires this tag on groups behind a capacity provider with managed termination protection.
  ecs_managed_tag = { "AmazonECSManaged" = "true" }

  asg_tags = merge(var.tags, { "Name" = var.name }, local.ecs_managed_tag, local.placement_tags)

  # The delete timeout covers every instance draining at once plus launch/termination latency;
  # the destroy-time drain (destroy.tf) waits as long.
  delete_timeout_seconds = var.drain_deadline + 900
  delete_timeout         = "${local.delete_timeout_seconds}s"
}

################################################################################
# ECS cluster (single-group convenience; several groups share one modules/cluster instead)
################################################################################

module "cluster" {
  source = "./modules/cluster"
  count  = var.create_cluster ? 1 : 0

  name               = coalesce(var.cluster_name, var.name)
  container_insights = var.container_insights
  capacity_providers = concat([aws_ecs_capacity_provider.this.name], var.extra_capacity_providers)
  fargate            = var.fargate
  fargate_spot       = var.fargate_spot
  default_capacity_provider_strategy = var.default_capacity_provider_strategy ? [
    { capacity_provider = aws_ecs_capacity_provider.this.name, weight = 1, base = 0 }
  ] : []
  tags = var.tags
}

################################################################################
# Launch template
################################################################################

resource "aws_launch_template" "this" {
  name_prefix = "${var.name}-"
  description = "ecs-boot instances of ${var.name}"

  image_id               = local.ami_id
  instance_type          = var.mixed_instances == null ? var.instance_type : null
  key_name               = var.key_name
  vpc_security_group_ids = [aws_security_group.this.id]
  ebs_optimized          = true
  user_data              = base64encode(local.user_data)
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = var.imds_hop_limit
    # ecs-boot reads the placement tags (ecs-boot:attribute:*) from instance metadata.
    instance_metadata_tags = "enabled"
  }

  block_device_mappings {
    device_name = var.root_volume.device_name

    ebs {
      volume_size           = var.root_volume.size_gb
      volume_type           = var.root_volume.type
      encrypted             = true
      kms_key_id            = var.root_volume.kms_key_id
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = var.detailed_monitoring
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { "Name" = var.name })
  }

  tags = var.tags
}

################################################################################
# Auto Scaling Group
################################################################################

resource "aws_autoscaling_group" "this" {
  name                = var.name
  vpc_zone_identifier = var.subnet_ids
  min_size            = var.min_size
  max_size            = var.max_size
  # Created at min_size (0 by default): the hooks (hooks.tf) are separate resources that exist only
  # once the group does, so instances launched at creation would miss them.
  desired_capacity = coalesce(var.desired_capacity, var.min_size)

  health_check_type         = "EC2"
  health_check_grace_period = var.health_check_grace_period
  wait_for_capacity_timeout = var.wait_for_capacity_timeout
  # false: ForceDelete discards outstanding lifecycle actions, so nothing would drain.
  force_delete = var.force_delete
  # Managed termination protection needs new instances protected from scale-in.
  protect_from_scale_in = var.managed_termination_protection

  dynamic "launch_template" {
    for_each = var.mixed_instances == null ? [1] : []
    content {
      id      = aws_launch_template.this.id
      version = aws_launch_template.this.latest_version
    }
  }

  dynamic "mixed_instances_policy" {
    for_each = var.mixed_instances == null ? [] : [var.mixed_instances]
    content {
      instances_distribution {
        on_demand_base_capacity                  = mixed_instances_policy.value.on_demand_base_capacity
        on_demand_percentage_above_base_capacity = mixed_instances_policy.value.on_demand_percentage_above_base_capacity
        spot_allocation_strategy                 = mixed_instances_policy.value.spot_allocation_strategy
      }

      launch_template {
        launch_template_specification {
          launch_template_id = aws_launch_template.this.id
          version            = aws_launch_template.this.latest_version
        }

        dynamic "override" {
          for_each = mixed_instances_policy.value.instance_types
          content {
            instance_type = override.value
          }
        }
      }
    }
  }

  dynamic "warm_pool" {
    for_each = var.warm_pool == null ? [] : [var.warm_pool]
    content {
      pool_state                  = warm_pool.value.pool_state
      min_size                    = warm_pool.value.min_size
      max_group_prepared_capacity = warm_pool.value.max_group_prepared_capacity

      instance_reuse_policy {
        reuse_on_scale_in = false
      }
    }
  }

  instance_refresh {
    strategy = "Rolling"
    # Launch template changes (AMI, user data: cluster, drain deadline, trust lists) always start a
    # refresh; these add the per-group settings that live outside it: the placement tags and the
    # instance types.
    triggers = concat(["tag"], var.mixed_instances == null ? [] : ["mixed_instances_policy"])

    preferences {
      min_healthy_percentage = var.instance_refresh.min_healthy_percentage
      max_healthy_percentage = var.instance_refresh.max_healthy_percentage
      instance_warmup        = var.instance_refresh.instance_warmup
      skip_matching          = var.instance_refresh.skip_matching
      auto_rollback          = var.instance_refresh.auto_rollback
      # Without "Refresh", a refresh waits forever on instances ECS keeps protected
      # (terraform-provider-aws#29827).
      scale_in_protected_instances = var.managed_termination_protection ? "Refresh" : "Ignore"
      standby_instances            = "Ignore"
    }
  }

  dynamic "tag" {
    for_each = local.asg_tags
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  timeouts {
    # Longer than the drain deadline: without force_delete, deleting the group scales it to zero
    # and waits while the instances drain.
    delete = local.delete_timeout
  }

  # Destroyed before its permissions and its cluster: instances still drain during the delete.
  depends_on = [
    aws_iam_role_policy.ecs_instance,
    aws_iam_role_policy.ssm_instance,
    aws_iam_role_policy.ecs_boot,
    aws_iam_role_policy.host_logs, # the host's logs keep shipping while it drains
  ]

  lifecycle {
    # Managed scaling owns the desired capacity after creation.
    ignore_changes = [desired_capacity]

    precondition {
      condition     = var.min_size <= var.max_size
      error_message = "min_size must not exceed max_size."
    }

    precondition {
      # AWS refuses a warm pool on a group with a mixed instances policy or spot instances.
      condition     = var.warm_pool == null || var.mixed_instances == null
      error_message = "warm_pool cannot be used with mixed_instances (mixed instances policy / spot): AWS refuses PutWarmPool on such groups."
    }

    precondition {
      condition     = var.config_location == null || anytrue([for p in var.fragment_locations : startswith(coalesce(var.config_location, "-"), p)])
      error_message = "config_location must lie under one of fragment_locations: ecs-boot refuses a fragment from anywhere else."
    }

    precondition {
      # Launches fail when a propagated key is not valid in instance metadata.
      condition = alltrue([
        for k in keys(local.asg_tags) :
        can(regex("^[A-Za-z0-9+=._:@,-]{1,128}$", k)) && !contains([".", "..", "_index"], k)
      ])
      error_message = "Every propagated tag key must be valid in instance metadata (no space, no '/', at most 128 characters)."
    }
  }
}
