################################################################################
# One pipeline, generic over what a stage deploys:
#
#   Source   S3 object version (Packer's manifest, or the release record of an image push)
#   Release  CodeBuild: read the source, name the release (AMI id or image digest) in the
#            variables #{Release.RELEASE_ID} / #{Release.RELEASE_LABEL}; for images, convert
#            imageDetail.json into imagedefinitions.json (image by digest)
#   <env 1>  deploy at once
#   <env n>  manual approval naming the release, then deploy
#
# Every stage deploys the Release stage's artifact of the same execution: an approval promotes
# exactly the AMI id / digest its message names, never "the newest build".
################################################################################

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  image_pipeline  = var.source_image != null
  artifact_bucket = "${var.name}-${local.account_id}-${local.region}"
  # Known at plan time (a plan shows the buildspecs whole); the repository's own attribute is not.
  repository_url = local.image_pipeline ? "${local.account_id}.dkr.ecr.${local.region}.${data.aws_partition.current.dns_suffix}/${var.source_image.repository_name}" : null
  deploy_kind    = var.deploy.kind

  # An image push is recorded as a zip in the artifact bucket (the release record); a manifest
  # comes from the user's (Packer's) bucket.
  source_bucket = local.image_pipeline ? local.artifact_bucket : var.source_manifest.bucket
  source_key    = local.image_pipeline ? "releases/${var.name}/release.zip" : var.source_manifest.object_key
  source_kms    = local.image_pipeline ? null : var.source_manifest.kms_key_arn

  pipeline_arn = "arn:${local.partition}:codepipeline:${local.region}:${local.account_id}:${var.name}"

  environment_role_arns    = [for e in var.environments : e.role_arn]
  environment_account_ids  = distinct([for arn in local.environment_role_arns : split(":", arn)[4]])
  environment_account_root = [for a in local.environment_account_ids : "arn:${local.partition}:iam::${a}:root"]

  release_file = local.image_pipeline ? "imagedefinitions.json" : var.source_manifest.manifest_path
}

resource "aws_codepipeline" "this" {
  name           = var.name
  role_arn       = aws_iam_role.pipeline.arn
  pipeline_type  = "V2"
  execution_mode = var.execution_mode
  tags           = var.tags

  artifact_store {
    location = aws_s3_bucket.artifacts.id
    type     = "S3"

    encryption_key {
      id   = aws_kms_key.artifacts.arn
      type = "KMS"
    }
  }

  stage {
    name = "Source"

    action {
      name             = "Source"
      category         = "Source"
      owner            = "AWS"
      provider         = "S3"
      version          = "1"
      run_order        = 1
      namespace        = "SourceVariables"
      output_artifacts = ["source"]

      configuration = {
        S3Bucket    = local.source_bucket
        S3ObjectKey = local.source_key
        # The EventBridge rule (source.tf) starts the pipeline; polling would start it twice.
        PollForSourceChanges = "false"
      }
    }
  }

  stage {
    name = "Release"

    action {
      name             = "Describe"
      category         = "Build"
      owner            = "AWS"
      provider         = "CodeBuild"
      version          = "1"
      run_order        = 1
      namespace        = "Release"
      input_artifacts  = ["source"]
      output_artifacts = ["release"]

      configuration = {
        ProjectName = aws_codebuild_project.this["release"].name
      }
    }
  }

  dynamic "stage" {
    for_each = var.environments
    iterator = env

    content {
      name = env.value.name

      # The first environment deploys at once; every later one waits for a person. The message
      # names the release so nobody approves "whatever is newest".
      dynamic "action" {
        for_each = env.key == 0 ? [] : [1]
        content {
          name      = "Approve"
          category  = "Approval"
          owner     = "AWS"
          provider  = "Manual"
          version   = "1"
          run_order = 1

          configuration = merge(
            {
              CustomData = "Promote #{Release.RELEASE_LABEL} to ${env.value.name} (deployed to ${var.environments[env.key - 1].name} by this execution, source version #{SourceVariables.VersionId}). Approving promotes exactly this release, not a newer one."
            },
            var.approval_topic_arn == null ? {} : { NotificationArn = var.approval_topic_arn },
          )
        }
      }

      dynamic "action" {
        for_each = local.deploy_kind == "rollout" ? [env.value] : []
        content {
          name             = "Rollout"
          category         = "Build"
          owner            = "AWS"
          provider         = "CodeBuild"
          version          = "1"
          run_order        = 2
          input_artifacts  = ["release"]
          output_artifacts = ["rollout_${replace(env.value.name, "-", "_")}"]

          configuration = {
            ProjectName = aws_codebuild_project.this["deploy"].name
            EnvironmentVariables = jsonencode([
              { name = "ENVIRONMENT", value = env.value.name, type = "PLAINTEXT" },
              { name = "TARGET_ROLE_ARN", value = env.value.role_arn, type = "PLAINTEXT" },
              { name = "TARGET_REGION", value = coalesce(env.value.region, local.region), type = "PLAINTEXT" },
            ])
          }
        }
      }

      dynamic "action" {
        for_each = local.deploy_kind == "ecs" ? [env.value] : []
        content {
          name            = "Deploy"
          category        = "Deploy"
          owner           = "AWS"
          provider        = "ECS"
          version         = "1"
          run_order       = 2
          input_artifacts = ["release"]
          role_arn        = action.value.role_arn
          region          = action.value.region

          configuration = {
            ClusterName       = action.value.ecs.cluster_name
            ServiceName       = action.value.ecs.service_name
            FileName          = "imagedefinitions.json"
            DeploymentTimeout = tostring(var.deploy.ecs_deployment_timeout_minutes)
          }
        }
      }
    }
  }
}
