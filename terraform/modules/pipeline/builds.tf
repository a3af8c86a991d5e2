################################################################################
# CodeBuild projects, each with its own role (iam.tf) and log group:
#   release  the Release stage (both pipelines)
#   deploy   the rollout action of every environment stage (AMI pipeline)
#   record   an image push -> release record in S3 (image pipeline)
#   packer   the Packer build on a new ECS-optimized AMI (optional)
################################################################################

locals {
  standard_image = "aws/codebuild/amazonlinux-x86_64-standard:5.0"

  release_buildspec = local.image_pipeline ? templatefile("${path.module}/buildspecs/describe_image.yml", {
    repository_url  = local.repository_url
    repository_name = var.source_image.repository_name
    tag_prefix      = var.source_image.release_tag_prefix
    container_name  = var.deploy.container_name
    }) : templatefile("${path.module}/buildspecs/describe_manifest.yml", {
    manifest_path = var.source_manifest.manifest_path
  })

  builds = merge(
    {
      release = {
        description = "Release stage of ${var.name}: names the AMI id or image digest this execution carries"
        source_type = "CODEPIPELINE"
        location    = null
        buildspec   = local.release_buildspec
        image       = local.standard_image
        compute     = "BUILD_GENERAL1_SMALL"
        timeout     = 10
        private_ecr = false
      }
    },
    local.deploy_kind != "rollout" ? {} : {
      deploy = {
        description = "Environment stages of ${var.name}: ecs-boot-fleet rollout as the environment's role"
        source_type = "CODEPIPELINE"
        location    = null
        buildspec = templatefile("${path.module}/buildspecs/rollout.yml", {
          pipeline_name = var.name
          manifest_path = var.source_manifest.manifest_path
        })
        image       = var.deploy.rollout.image
        compute     = var.deploy.rollout.compute_type
        timeout     = var.deploy.rollout.timeout_minutes
        private_ecr = var.deploy.rollout.image_repository_arn != null
      }
    },
    !local.image_pipeline ? {} : {
      record = {
        description = "Records a pushed release tag of ${var.source_image.repository_name} by digest as ${var.name}'s next source version"
        source_type = "NO_SOURCE"
        location    = null
        buildspec = templatefile("${path.module}/buildspecs/record_image.yml", {
          registry_id     = local.account_id
          repository_name = var.source_image.repository_name
          repository_url  = local.repository_url
          tag_prefix      = var.source_image.release_tag_prefix
          bucket          = local.artifact_bucket
          key             = local.source_key
        })
        image       = local.standard_image
        compute     = "BUILD_GENERAL1_SMALL"
        timeout     = 10
        private_ecr = false
      }
    },
    var.ami_update_trigger == null ? {} : {
      packer = {
        description = "Builds ecs-boot's AMI with Packer when AWS publishes a new ECS-optimized AMI"
        source_type = "S3"
        location    = var.ami_update_trigger.packer_source
        buildspec = templatefile("${path.module}/buildspecs/packer.yml", {
          build_commands = var.ami_update_trigger.build_commands
          manifest_file  = var.ami_update_trigger.manifest_file
          bucket         = var.source_manifest.bucket
          key            = var.source_manifest.object_key
          kms_key_arn    = var.source_manifest.kms_key_arn
        })
        image       = var.ami_update_trigger.image
        compute     = "BUILD_GENERAL1_MEDIUM"
        timeout     = var.ami_update_trigger.timeout_min
        private_ecr = false
      }
    },
  )
}

resource "aws_cloudwatch_log_group" "builds" {
  for_each = local.builds

  name              = "/codebuild/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.artifacts.arn
  tags              = var.tags
}

resource "aws_codebuild_project" "this" {
  for_each = local.builds

  name           = "${var.name}-${each.key}"
  description    = each.value.description
  service_role   = aws_iam_role.builds[each.key].arn
  build_timeout  = each.value.timeout
  encryption_key = aws_kms_key.artifacts.arn
  tags           = var.tags

  source {
    type      = each.value.source_type
    location  = each.value.location
    buildspec = each.value.buildspec
  }

  artifacts {
    type = each.value.source_type == "CODEPIPELINE" ? "CODEPIPELINE" : "NO_ARTIFACTS"
  }

  environment {
    type                        = "LINUX_CONTAINER"
    compute_type                = each.value.compute
    image                       = each.value.image
    image_pull_credentials_type = each.value.private_ecr ? "SERVICE_ROLE" : "CODEBUILD"
    privileged_mode             = false
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.builds[each.key].name
    }

    s3_logs {
      status = "DISABLED"
    }
  }

  # A project's first build must not start before its role may write its logs.
  depends_on = [aws_iam_role_policy.builds]
}
