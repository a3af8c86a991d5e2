data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# The Packer build publishes the AMI id here; reading it at plan time turns a new image into a
# launch template version, which instance refresh rolls out.
data "aws_ssm_parameter" "ami" {
  count = var.ami_ssm_parameter != null ? 1 : 0
  name  = var.ami_ssm_parameter
}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  cluster_name = coalesce(var.cluster_name, var.name)
  cluster_arn  = var.create_cluster ? aws_ecs_cluster.this[0].arn : "arn:${local.partition}:ecs:${local.region}:${local.account_id}:cluster/${local.cluster_name}"

  ami_id = var.ami_id != null ? var.ami_id : data.aws_ssm_parameter.ami[0].insecure_value

  # Everything ecs-boot reads from /latest/meta-data/tags/instance (docs/contract.md). These are
  # ASG tags propagated at launch, so they are on the instance before ecs-boot starts.
  ecs_boot_tags = merge(
    {
      "ecs-boot:cluster"     = local.cluster_name
      "ecs-boot:asg"         = var.name
      "ecs-boot:launch-hook" = local.launch_hook_name
    },
    local.terminate_hook_enabled ? { "ecs-boot:terminate-hook" = local.terminate_hook_name } : {},
    var.registry_auth != null ? { "ecs-boot:registry-auth" = var.registry_auth } : {},
    var.config_location != null ? { "ecs-boot:config" = var.config_location } : {},
    { for name, value in var.instance_attributes : "ecs-boot:attribute:${name}" => value },
    { for name, value in var.agent_settings : "ecs-boot:setting:${name}" => value },
  )

  # ECS requires this tag on groups behind a capacity provider with managed termination protection.
  ecs_managed_tag = { "AmazonECSManaged" = "true" }

  asg_tags = merge(var.tags, { "Name" = var.name }, local.ecs_managed_tag, local.ecs_boot_tags)
}

################################################################################
# ECS cluster
################################################################################

resource "aws_ecs_cluster" "this" {
  count = var.create_cluster ? 1 : 0
  name  = local.cluster_name

  setting {
    name  = "containerInsights"
    value = var.container_insights
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.create_cluster || var.cluster_name != null
      error_message = "cluster_name is required when create_cluster is false."
    }
  }
}

################################################################################
# Launch template
################################################################################

resource "aws_launch_template" "this" {
  name_prefix = "${var.name}-"
  description = "ecs-boot instances of ${var.name}"

  image_id               = local.ami_id
  instance_type          = var.instance_type
  key_name               = var.key_name
  vpc_security_group_ids = [aws_security_group.this.id]
  ebs_optimized          = true
  user_data              = var.user_data != null ? base64encode(var.user_data) : null
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = var.imds_hop_limit
    # ecs-boot takes cluster, hooks, credentials location and settings from instance tags.
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

  lifecycle {
    precondition {
      condition     = (var.ami_id == null) != (var.ami_ssm_parameter == null)
      error_message = "Set exactly one of ami_id and ami_ssm_parameter."
    }
  }
}

################################################################################
# Auto Scaling Group
################################################################################

resource "aws_autoscaling_group" "this" {
  name                = var.name
  vpc_zone_identifier = var.subnet_ids
  min_size            = var.min_size
  max_size            = var.max_size
  desired_capacity    = var.desired_capacity

  health_check_type         = "EC2"
  health_check_grace_period = var.health_check_grace_period
  wait_for_capacity_timeout = var.wait_for_capacity_timeout
  force_delete              = var.force_delete
  # Managed termination protection needs new instances protected from scale-in.
  protect_from_scale_in = var.managed_termination_protection

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  # initial_lifecycle_hook (not aws_autoscaling_lifecycle_hook) so the hooks exist before the
  # first instance launches; the hook definitions live in hooks.tf.
  dynamic "initial_lifecycle_hook" {
    for_each = local.lifecycle_hooks
    content {
      name                 = initial_lifecycle_hook.value.name
      lifecycle_transition = initial_lifecycle_hook.value.lifecycle_transition
      heartbeat_timeout    = initial_lifecycle_hook.value.heartbeat_timeout
      default_result       = initial_lifecycle_hook.value.default_result
    }
  }

  instance_refresh {
    strategy = "Rolling"
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

  lifecycle {
    # Managed scaling owns the desired capacity after creation.
    ignore_changes = [desired_capacity]

    precondition {
      condition     = var.min_size <= var.max_size
      error_message = "min_size must not exceed max_size."
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
