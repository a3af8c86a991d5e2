################################################################################
# Instance role. Instead of the AWS managed policies AmazonEC2ContainerServiceforEC2Role and
# AmazonSSMManagedInstanceCore, inline copies of their documents minus exactly:
#   ssm:GetParameter, ssm:GetParameters on *  (any parameter of the account, secrets included)
#   ecs:CreateCluster                          (an instance never needs to create a cluster)
#   ecs:DeregisterContainerInstance            (nor take instances out of any cluster)
#   ecs:UpdateContainerInstancesState on *     (drain instances of any cluster; granted below
#                                               for this cluster only)
# tests/test_terraform_apply.py diffs these against the managed documents moto carries, so the
# copies stay exact. Plus exactly the calls ecs-boot makes (docs/contract.md), scoped as tightly
# as IAM allows.
################################################################################

locals {
  # "s3://bucket/key" -> object ARN; "ssm:/name" -> parameter ARN; a trailing "/" (an allowlist
  # prefix) becomes a wildcard under it.
  ecs_boot_locations = compact(concat([var.registry_auth, var.config_location], var.fragment_locations, var.registry_auth_locations))

  s3_object_arns = [
    for loc in local.ecs_boot_locations :
    "arn:${local.partition}:s3:::${trimprefix(loc, "s3://")}${endswith(loc, "/") ? "*" : ""}" if startswith(loc, "s3://")
  ]

  ssm_parameter_arns = [
    for loc in local.ecs_boot_locations :
    "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${trimprefix(trimprefix(loc, "ssm:"), "/")}${endswith(loc, "/") ? "*" : ""}"
    if startswith(loc, "ssm:")
  ]

  # kms:Decrypt is needed only for what S3 or SSM decrypt on ecs-boot's behalf.
  kms_via_services = concat(
    length(local.s3_object_arns) > 0 ? ["s3.${local.region}.amazonaws.com"] : [],
    length(local.ssm_parameter_arns) > 0 ? ["ssm.${local.region}.amazonaws.com"] : [],
  )
  kms_decrypt_key_arns = length(var.kms_key_arns) > 0 ? var.kms_key_arns : ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"]

  asg_arn_pattern = "arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/${var.name}"

  # IAM name prefixes may be at most 38 characters (a 26-character unique suffix follows).
  iam_name_prefix = "${substr(var.name, 0, 37)}-"
}

data "aws_iam_policy_document" "assume_role" {
  statement {
    sid     = "EC2AssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# Name prefixes: IAM names are global to the account, so the same group name in two regions (or
# two stacks) must not collide.
resource "aws_iam_role" "this" {
  name_prefix          = local.iam_name_prefix
  description          = "ecs-boot container instances of ${var.name}"
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = local.iam_name_prefix
  role        = aws_iam_role.this.name
  tags        = var.tags
}

# AmazonEC2ContainerServiceforEC2Role (v10) without ecs:CreateCluster,
# ecs:DeregisterContainerInstance and ecs:UpdateContainerInstancesState: the ECS agent
# (register, poll, telemetry, ECR pulls, awslogs) and ecr:GetAuthorizationToken for ecs-boot's
# system-container pulls.
data "aws_iam_policy_document" "ecs_instance" {
  #checkov:skip=CKV_AWS_355:Copy of AmazonEC2ContainerServiceforEC2Role: the ECS agent's calls (Poll, Submit*, RegisterContainerInstance, ECR token) support no resource scoping.
  #checkov:skip=CKV_AWS_290:Copy of AmazonEC2ContainerServiceforEC2Role: the ECS agent's calls support no resource scoping; the unscoped drain/deregister actions are removed.
  #checkov:skip=CKV_AWS_356:Copy of AmazonEC2ContainerServiceforEC2Role: the ECS agent's calls support no resource scoping.
  #checkov:skip=CKV_AWS_111:Copy of AmazonEC2ContainerServiceforEC2Role: Submit*, RegisterContainerInstance and awslogs writes support no resource scoping.
  statement {
    actions = [
      "ec2:DescribeTags",
      "ecs:DiscoverPollEndpoint",
      "ecs:Poll",
      "ecs:RegisterContainerInstance",
      "ecs:StartTelemetrySession",
      "ecs:Submit*",
      "ecr:GetAuthorizationToken",
      "ecr:BatchCheckLayerAvailability",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchGetImage",
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = ["*"]
  }

  statement {
    actions   = ["ecs:TagResource"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["CreateCluster", "RegisterContainerInstance"]
    }
  }

  statement {
    actions = ["ecs:ListTagsForResource"]
    resources = [
      "arn:${local.partition}:ecs:*:*:task/*/*",
      "arn:${local.partition}:ecs:*:*:container-instance/*/*",
    ]
  }
}

resource "aws_iam_role_policy" "ecs_instance" {
  name   = "ecs-instance"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.ecs_instance.json
}

# AmazonSSMManagedInstanceCore (v2) without ssm:GetParameter and ssm:GetParameters on *: Session
# Manager instead of SSH, and `ecs-boot status` through SSM Run Command.
data "aws_iam_policy_document" "ssm_instance" {
  #checkov:skip=CKV_AWS_355:Copy of AmazonSSMManagedInstanceCore: the SSM agent's messaging calls support no resource scoping.
  #checkov:skip=CKV_AWS_290:Copy of AmazonSSMManagedInstanceCore: the SSM agent's calls support no resource scoping; ssm:GetParameter(s) on * is removed.
  #checkov:skip=CKV_AWS_356:Copy of AmazonSSMManagedInstanceCore: the SSM agent's messaging calls support no resource scoping.
  #checkov:skip=CKV_AWS_111:Copy of AmazonSSMManagedInstanceCore: the SSM agent's inventory and messaging writes support no resource scoping.
  statement {
    actions = [
      "ssm:DescribeAssociation",
      "ssm:GetDeployablePatchSnapshotForInstance",
      "ssm:GetDocument",
      "ssm:DescribeDocument",
      "ssm:GetManifest",
      "ssm:ListAssociations",
      "ssm:ListInstanceAssociations",
      "ssm:PutInventory",
      "ssm:PutComplianceItems",
      "ssm:PutConfigurePackageResult",
      "ssm:UpdateAssociationStatus",
      "ssm:UpdateInstanceAssociationStatus",
      "ssm:UpdateInstanceInformation",
    ]
    resources = ["*"]
  }

  statement {
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }

  statement {
    actions = [
      "ec2messages:AcknowledgeMessage",
      "ec2messages:DeleteMessage",
      "ec2messages:FailMessage",
      "ec2messages:GetEndpoint",
      "ec2messages:GetMessages",
      "ec2messages:SendReply",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "ssm_instance" {
  name   = "ssm-instance"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.ssm_instance.json
}

data "aws_iam_policy_document" "ecs_boot" {
  statement {
    sid = "LifecycleActionsOnThisGroup"
    actions = [
      "autoscaling:CompleteLifecycleAction",
      "autoscaling:RecordLifecycleActionHeartbeat",
    ]
    resources = [local.asg_arn_pattern]
  }

  # Describe calls support no resource-level scoping (Resource must be "*").
  statement {
    sid = "DescribeOwnGroupAndHooks"
    actions = [
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLifecycleHooks",
    ]
    resources = ["*"]
  }

  # Also the ECS agent's own UpdateContainerInstancesState (spot draining), now for this cluster
  # only.
  statement {
    sid = "DrainInThisCluster"
    actions = [
      "ecs:DescribeContainerInstances",
      "ecs:UpdateContainerInstancesState",
      "ecs:ListTasks",
      "ecs:DescribeTasks",
      "ecs:StopTask",
    ]
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  # Readiness for placement: ecs-boot sets the attribute ecs-boot.ready on its own container
  # instance (false at registration, true before the launch CONTINUE).
  statement {
    sid       = "MarkReadyInThisCluster"
    actions   = ["ecs:PutAttributes"]
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  dynamic "statement" {
    for_each = length(local.s3_object_arns) > 0 ? [1] : []
    content {
      sid       = "ReadCredentialsAndConfigObjects"
      actions   = ["s3:GetObject"]
      resources = local.s3_object_arns
    }
  }

  # The flight recorder writes objects under its prefix and nowhere else: no read, no list, no
  # delete (evidence cannot be read back or erased with the instance's credentials).
  dynamic "statement" {
    for_each = var.recorder_location != null ? [1] : []
    content {
      sid       = "RecordEvidenceUnderPrefix"
      actions   = ["s3:PutObject"]
      resources = ["arn:${local.partition}:s3:::${trimprefix(coalesce(var.recorder_location, "s3://unused/"), "s3://")}*"]
    }
  }

  # Boot, hook and drain metrics (and the CloudWatch agent's disk and memory) into the
  # module's namespace only. PutMetricData has no resource to scope: the namespace is its
  # condition key.
  dynamic "statement" {
    for_each = var.metrics.enabled ? [1] : []
    content {
      sid       = "PutMetricsInOwnNamespace"
      actions   = ["cloudwatch:PutMetricData"]
      resources = ["*"]

      condition {
        test     = "StringEquals"
        variable = "cloudwatch:namespace"
        values   = [var.metrics.namespace]
      }
    }
  }

  dynamic "statement" {
    for_each = length(local.ssm_parameter_arns) > 0 ? [1] : []
    content {
      sid       = "ReadCredentialsAndConfigParameters"
      actions   = ["ssm:GetParameter"]
      resources = local.ssm_parameter_arns
    }
  }

  dynamic "statement" {
    for_each = length(local.kms_via_services) > 0 ? [1] : []
    content {
      sid       = "DecryptOnlyThroughS3AndSsm"
      actions   = ["kms:Decrypt"]
      resources = local.kms_decrypt_key_arns

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = local.kms_via_services
      }
    }
  }
}

resource "aws_iam_role_policy" "ecs_boot" {
  name   = "ecs-boot"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.ecs_boot.json
}

# The CloudWatch agent (baked into the AMI, configured by ecs-boot from [logs]): streams in the
# module's log group only. The group exists (monitoring.tf), so no logs:CreateLogGroup.
data "aws_iam_policy_document" "host_logs" {
  statement {
    sid = "ShipHostLogsToOwnGroup"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = [local.log_group_arn, "${local.log_group_arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "host_logs" {
  count = var.host_logs ? 1 : 0

  name   = "host-logs"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.host_logs.json
}
