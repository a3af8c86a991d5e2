################################################################################
# Roles, one per principal, each allowed exactly what it does:
#   pipeline  CodePipeline: artifacts, its own build projects, the environment roles (ECS deploy)
#   builds    one per CodeBuild project (builds.tf)
#   events    EventBridge: start this pipeline and the record/packer builds
################################################################################

locals {
  artifacts_objects = "${aws_s3_bucket.artifacts.arn}/*"
  source_object_arn = "arn:${local.partition}:s3:::${local.source_bucket}/${local.source_key}"
  source_bucket_arn = "arn:${local.partition}:s3:::${local.source_bucket}"
  log_group_arns    = { for k, lg in aws_cloudwatch_log_group.builds : k => lg.arn }

  pipeline_builds = [for k in ["release", "deploy"] : aws_codebuild_project.this[k].arn if contains(keys(local.builds), k)]
}

data "aws_iam_policy_document" "assume" {
  for_each = toset(["codepipeline", "codebuild", "events"])

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["${each.key}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- pipeline ---------------------------------------------------------------------------------

resource "aws_iam_role" "pipeline" {
  name_prefix        = "${substr(var.name, 0, 28)}-pipe-"
  description        = "CodePipeline ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume["codepipeline"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "pipeline" {
  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = [local.artifacts_objects]
  }

  statement {
    sid       = "ArtifactBucket"
    actions   = ["s3:GetBucketVersioning", "s3:GetBucketLocation"]
    resources = distinct([aws_s3_bucket.artifacts.arn, local.source_bucket_arn])
  }

  statement {
    sid       = "SourceObject"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [local.source_object_arn]
  }

  statement {
    sid       = "ArtifactKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = compact([aws_kms_key.artifacts.arn, local.source_kms])
  }

  statement {
    sid       = "RunTheBuildsOfThisPipeline"
    actions   = ["codebuild:StartBuild", "codebuild:BatchGetBuilds"]
    resources = local.pipeline_builds
  }

  # The ECS deploy action acts as the environment's role; the pipeline role deploys nothing.
  dynamic "statement" {
    for_each = local.deploy_kind == "ecs" ? [1] : []
    content {
      sid       = "ActAsTheEnvironmentRoles"
      actions   = ["sts:AssumeRole"]
      resources = local.environment_role_arns
    }
  }

  dynamic "statement" {
    for_each = var.approval_topic_arn == null ? [] : [1]
    content {
      sid       = "AnnounceApprovals"
      actions   = ["sns:Publish"]
      resources = [var.approval_topic_arn]
    }
  }
}

resource "aws_iam_role_policy" "pipeline" {
  name   = "pipeline"
  role   = aws_iam_role.pipeline.id
  policy = data.aws_iam_policy_document.pipeline.json
}

# --- build projects ---------------------------------------------------------------------------

resource "aws_iam_role" "builds" {
  for_each = local.builds

  name_prefix        = "${substr(var.name, 0, 24)}-${substr(each.key, 0, 7)}-"
  description        = "CodeBuild ${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume["codebuild"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "builds" {
  for_each = local.builds

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arns[each.key]}:log-stream:*"]
  }

  # Input and output artifacts of the pipeline's builds (CodeBuild reads and writes them itself).
  dynamic "statement" {
    for_each = each.value.source_type == "CODEPIPELINE" ? [1] : []
    content {
      sid       = "PipelineArtifacts"
      actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
      resources = [local.artifacts_objects]
    }
  }

  statement {
    sid       = "ArtifactKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [aws_kms_key.artifacts.arn]
  }

  # deploy: the rollout runs as the environment's role, nothing else.
  dynamic "statement" {
    for_each = each.key == "deploy" ? [1] : []
    content {
      sid       = "ActAsTheEnvironmentRoles"
      actions   = ["sts:AssumeRole"]
      resources = local.environment_role_arns
    }
  }

  dynamic "statement" {
    for_each = each.value.private_ecr ? [1] : []
    content {
      sid       = "PullTheRolloutImage"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = [var.deploy.rollout.image_repository_arn]
    }
  }

  dynamic "statement" {
    for_each = each.value.private_ecr ? [1] : []
    content {
      sid       = "EcrToken"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }

  # record: confirm the pushed tag's digest, write the release record.
  dynamic "statement" {
    for_each = each.key == "record" ? [1] : []
    content {
      sid       = "ConfirmThePushedImage"
      actions   = ["ecr:DescribeImages"]
      resources = [aws_ecr_repository.release[0].arn]
    }
  }

  dynamic "statement" {
    for_each = each.key == "record" || each.key == "packer" ? [1] : []
    content {
      sid       = "WriteTheSourceObject"
      actions   = ["s3:PutObject"]
      resources = [local.source_object_arn]
    }
  }

  dynamic "statement" {
    for_each = each.key == "packer" && local.source_kms != null ? [1] : []
    content {
      sid       = "SourceKey"
      actions   = ["kms:GenerateDataKey", "kms:Encrypt"]
      resources = [local.source_kms]
    }
  }

  dynamic "statement" {
    for_each = each.key == "packer" ? [1] : []
    content {
      sid       = "ReadThePackerSource"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = ["arn:${local.partition}:s3:::${var.ami_update_trigger.packer_source}"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "packer" ? [1] : []
    content {
      sid       = "BaseAmiParameters"
      actions   = ["ssm:GetParameter", "ssm:GetParameters"]
      resources = ["arn:${local.partition}:ssm:${local.region}::parameter/aws/service/ecs/*"]
    }
  }

  # Packer's amazon-ebs builder (its documented minimal policy). These EC2 actions create the
  # builder instance, its key pair, security group and volumes, and the image: they have no
  # resource ARN before the resources exist, so the scope is this region.
  dynamic "statement" {
    for_each = each.key == "packer" ? [1] : []
    content {
      sid = "PackerAmazonEbs"
      actions = [
        "ec2:AttachVolume", "ec2:AuthorizeSecurityGroupIngress", "ec2:CopyImage", "ec2:CreateImage",
        "ec2:CreateKeyPair", "ec2:CreateSecurityGroup", "ec2:CreateSnapshot", "ec2:CreateTags",
        "ec2:CreateVolume", "ec2:DeleteKeyPair", "ec2:DeleteSecurityGroup", "ec2:DeleteSnapshot",
        "ec2:DeleteVolume", "ec2:DeregisterImage", "ec2:DescribeImageAttribute", "ec2:DescribeImages",
        "ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeRegions",
        "ec2:DescribeSecurityGroups", "ec2:DescribeSnapshots", "ec2:DescribeSubnets", "ec2:DescribeTags",
        "ec2:DescribeVolumes", "ec2:DetachVolume", "ec2:ModifyImageAttribute",
        "ec2:ModifyInstanceAttribute", "ec2:ModifySnapshotAttribute", "ec2:RegisterImage",
        "ec2:RunInstances", "ec2:StopInstances", "ec2:TerminateInstances",
      ]
      resources = ["*"]

      condition {
        test     = "StringEquals"
        variable = "aws:RequestedRegion"
        values   = [local.region]
      }
    }
  }
}

resource "aws_iam_role_policy" "builds" {
  #checkov:skip=CKV_AWS_289:Only the packer build has EC2 permissions without a resource ARN: the image and instances it creates do not exist yet (scoped to this region).
  for_each = local.builds

  name   = each.key
  role   = aws_iam_role.builds[each.key].id
  policy = data.aws_iam_policy_document.builds[each.key].json
}

# --- EventBridge ------------------------------------------------------------------------------

resource "aws_iam_role" "events" {
  name_prefix        = "${substr(var.name, 0, 28)}-evts-"
  description        = "EventBridge rules of ${var.name}: start the pipeline and its record/packer builds"
  assume_role_policy = data.aws_iam_policy_document.assume["events"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "events" {
  statement {
    sid       = "StartThisPipeline"
    actions   = ["codepipeline:StartPipelineExecution"]
    resources = [local.pipeline_arn]
  }

  dynamic "statement" {
    for_each = length(setintersection(keys(local.builds), ["record", "packer"])) == 0 ? [] : [1]
    content {
      sid       = "StartTheTriggeredBuilds"
      actions   = ["codebuild:StartBuild"]
      resources = [for k in ["record", "packer"] : aws_codebuild_project.this[k].arn if contains(keys(local.builds), k)]
    }
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "events"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}
