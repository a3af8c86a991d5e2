################################################################################
# Instance role: the two AWS managed policies ECS instances need, plus exactly the calls ecs-boot
# makes (docs/contract.md "AWS calls the agent makes"), each scoped as tightly as IAM allows.
################################################################################

locals {
  # "s3://bucket/key" -> object ARN; "ssm:/name" -> parameter ARN.
  ecs_boot_locations = compact([var.registry_auth, var.config_location])

  s3_object_arns = [
    for loc in local.ecs_boot_locations :
    "arn:${local.partition}:s3:::${trimprefix(loc, "s3://")}" if startswith(loc, "s3://")
  ]

  ssm_parameter_arns = [
    for loc in local.ecs_boot_locations :
    "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${trimprefix(trimprefix(loc, "ssm:"), "/")}"
    if startswith(loc, "ssm:")
  ]

  # kms:Decrypt is needed only for what S3 or SSM decrypt on ecs-boot's behalf.
  kms_via_services = concat(
    length(local.s3_object_arns) > 0 ? ["s3.${local.region}.amazonaws.com"] : [],
    length(local.ssm_parameter_arns) > 0 ? ["ssm.${local.region}.amazonaws.com"] : [],
  )
  kms_decrypt_key_arns = length(var.kms_key_arns) > 0 ? var.kms_key_arns : ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"]

  asg_arn_pattern = "arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/${var.name}"
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

resource "aws_iam_role" "this" {
  name                 = "${var.name}-instance"
  description          = "ecs-boot container instances of ${var.name}"
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_instance_profile" "this" {
  name = "${var.name}-instance"
  role = aws_iam_role.this.name
  tags = var.tags
}

# The ECS agent itself (register, poll, ECR pulls, awslogs) and ecr:GetAuthorizationToken for
# ecs-boot's system-container pulls come from this managed policy.
resource "aws_iam_role_policy_attachment" "ecs_instance" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

# Session Manager instead of SSH, and `ecs-boot status` through SSM Run Command.
resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
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

  dynamic "statement" {
    for_each = length(local.s3_object_arns) > 0 ? [1] : []
    content {
      sid       = "ReadCredentialsAndConfigObjects"
      actions   = ["s3:GetObject"]
      resources = local.s3_object_arns
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
