################################################################################
# What starts the pipeline: a new version of the source object (EventBridge "Object Created",
# no polling). For the image pipeline, that object is written by the record build, which
# EventBridge starts for every successful push of a release tag to the ECR repository.
################################################################################

resource "aws_cloudwatch_event_rule" "source_changed" {
  name        = "${var.name}-source"
  description = "A new version of s3://${local.source_bucket}/${local.source_key} starts ${var.name}"
  tags        = var.tags

  event_pattern = jsonencode({
    source      = ["aws.s3"]
    detail-type = ["Object Created"]
    detail = {
      bucket = { name = [local.source_bucket] }
      object = { key = [local.source_key] }
    }
  })
}

resource "aws_cloudwatch_event_target" "source_changed" {
  rule     = aws_cloudwatch_event_rule.source_changed.name
  arn      = aws_codepipeline.this.arn
  role_arn = aws_iam_role.events.arn
}

# --- image pipeline: the ECR repository and its push rule ------------------------------------

resource "aws_ecr_repository" "release" {
  count = local.image_pipeline ? 1 : 0

  name                 = var.source_image.repository_name
  image_tag_mutability = "IMMUTABLE"
  tags                 = var.tags

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = coalesce(var.source_image.kms_key_arn, aws_kms_key.artifacts.arn)
  }
}

resource "aws_ecr_lifecycle_policy" "release" {
  count = local.image_pipeline ? 1 : 0

  repository = aws_ecr_repository.release[0].name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Untagged images (build leftovers) go after ${var.source_image.untagged_days} days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.source_image.untagged_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest ${var.source_image.keep_release_count} releases (rollback targets)"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = [var.source_image.release_tag_prefix]
          countType     = "imageCountMoreThan"
          countNumber   = var.source_image.keep_release_count
        }
        action = { type = "expire" }
      },
    ]
  })
}

# Environments in other accounts pull the image their stage deploys.
data "aws_iam_policy_document" "release_repository" {
  count = local.image_pipeline ? 1 : 0

  statement {
    sid     = "EnvironmentAccountsPull"
    actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]

    principals {
      type        = "AWS"
      identifiers = local.environment_account_root
    }
  }
}

resource "aws_ecr_repository_policy" "release" {
  count = local.image_pipeline ? 1 : 0

  repository = aws_ecr_repository.release[0].name
  policy     = data.aws_iam_policy_document.release_repository[0].json
}

resource "aws_cloudwatch_event_rule" "release_pushed" {
  count = local.image_pipeline ? 1 : 0

  name        = "${var.name}-release-pushed"
  description = "A push of ${var.source_image.repository_name}:${var.source_image.release_tag_prefix}* records a release for ${var.name}"
  tags        = var.tags

  event_pattern = jsonencode({
    source      = ["aws.ecr"]
    detail-type = ["ECR Image Action"]
    detail = {
      action-type     = ["PUSH"]
      result          = ["SUCCESS"]
      repository-name = [var.source_image.repository_name]
      image-tag       = [{ prefix = var.source_image.release_tag_prefix }]
    }
  })
}

resource "aws_cloudwatch_event_target" "release_pushed" {
  count = local.image_pipeline ? 1 : 0

  rule     = aws_cloudwatch_event_rule.release_pushed[0].name
  arn      = aws_codebuild_project.this["record"].arn
  role_arn = aws_iam_role.events.arn

  # For a CodeBuild target the input is the StartBuild request: the build gets the pushed tag and
  # digest as environment variables (and checks both).
  input_transformer {
    input_paths = {
      tag    = "$.detail.image-tag"
      digest = "$.detail.image-digest"
    }
    input_template = <<-EOT
      {"environmentVariablesOverride": [
        {"name": "IMAGE_TAG", "value": <tag>, "type": "PLAINTEXT"},
        {"name": "IMAGE_DIGEST", "value": <digest>, "type": "PLAINTEXT"}
      ]}
    EOT
  }
}
