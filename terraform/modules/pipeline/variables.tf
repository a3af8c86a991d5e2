variable "name" {
  description = "Name of the pipeline; also the stem of its bucket, key alias, roles, build projects and rules."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "name must be 3-30 lower-case letters, digits or '-' (the artifact bucket is <name>-<account>-<region>)."
  }
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}
}

variable "source_manifest" {
  description = "AMI pipeline source: a zip in a versioned S3 bucket holding Packer's manifest.json (the AMI update trigger's build, or any Packer run, uploads it). The bucket must send events to EventBridge (aws_s3_bucket_notification eventbridge = true): a new object version starts the pipeline. Exactly one of source_manifest and source_image."
  type = object({
    bucket        = string
    object_key    = optional(string, "ami/manifest.zip")
    manifest_path = optional(string, "manifest.json")
    kms_key_arn   = optional(string)
  })
  default = null

  validation {
    condition     = var.source_manifest == null || try(endswith(var.source_manifest.object_key, ".zip"), false)
    error_message = "source_manifest.object_key must name a .zip: CodeBuild actions only unpack zipped S3 source artifacts."
  }

  validation {
    condition     = var.source_manifest == null || try(can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.source_manifest.bucket)), false)
    error_message = "source_manifest.bucket must be an S3 bucket name."
  }
}

variable "source_image" {
  description = "Image pipeline source: the module creates this ECR repository (scan on push, immutable tags, lifecycle policy). Every push of a tag starting with release_tag_prefix is recorded by digest and starts the pipeline. Exactly one of source_manifest and source_image."
  type = object({
    repository_name    = string
    release_tag_prefix = optional(string, "release-")
    keep_release_count = optional(number, 50)
    untagged_days      = optional(number, 7)
    kms_key_arn        = optional(string)
  })
  default = null

  validation {
    condition     = var.source_image == null || try(can(regex("^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$", var.source_image.repository_name)), false)
    error_message = "source_image.repository_name must be a valid ECR repository name (lower case, '/', '.', '_', '-')."
  }

  validation {
    condition     = var.source_image == null || try(can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$", var.source_image.release_tag_prefix)), false)
    error_message = "source_image.release_tag_prefix must be a non-empty tag prefix (letters, digits, '_', '.', '-'); an empty prefix would release every push."
  }

  validation {
    condition     = var.source_image == null || try(var.source_image.keep_release_count >= 1 && var.source_image.untagged_days >= 1, false)
    error_message = "source_image: keep_release_count and untagged_days must be at least 1."
  }

  validation {
    condition     = (var.source_image == null) != (var.source_manifest == null)
    error_message = "Set exactly one of source_manifest (AMI pipeline) and source_image (image pipeline)."
  }
}

variable "deploy" {
  description = "What every environment stage runs. kind \"rollout\": a CodeBuild action running `ecs-boot-fleet rollout --environment <name> --ami-from-manifest <path>` in rollout.image (exit 0 = promoted); needs source_manifest. kind \"ecs\": CodePipeline's native ECS deploy action with imagedefinitions.json naming the image by digest for container_name; needs source_image."
  type = object({
    kind           = string
    container_name = optional(string)
    rollout = optional(object({
      image                = string
      image_repository_arn = optional(string)
      compute_type         = optional(string, "BUILD_GENERAL1_SMALL")
      timeout_minutes      = optional(number, 120)
    }))
    ecs_deployment_timeout_minutes = optional(number, 60)
  })

  validation {
    condition     = contains(["rollout", "ecs"], var.deploy.kind)
    error_message = "deploy.kind must be \"rollout\" (AMI) or \"ecs\" (service image)."
  }

  validation {
    condition     = var.deploy.kind != "rollout" || (var.deploy.rollout != null && var.source_manifest != null)
    error_message = "deploy.kind \"rollout\" needs deploy.rollout (the CodeBuild image holding ecs-boot-fleet) and source_manifest."
  }

  validation {
    condition     = var.deploy.kind != "ecs" || (var.deploy.container_name != null && var.source_image != null)
    error_message = "deploy.kind \"ecs\" needs deploy.container_name (the name imagedefinitions.json uses) and source_image."
  }

  validation {
    condition     = var.deploy.rollout == null || try(var.deploy.rollout.timeout_minutes >= 5 && var.deploy.rollout.timeout_minutes <= 480, false)
    error_message = "deploy.rollout.timeout_minutes must be 5-480 (CodeBuild's limit); a rollout waits for its canary and checkpoints."
  }

  validation {
    condition     = var.deploy.ecs_deployment_timeout_minutes >= 1 && var.deploy.ecs_deployment_timeout_minutes <= 60
    error_message = "deploy.ecs_deployment_timeout_minutes must be 1-60 (the ECS deploy action's DeploymentTimeout)."
  }
}

variable "environments" {
  description = "Environments in promotion order, one stage each: the first deploys at once, every later one waits behind a manual approval. role_arn is the role in the environment's account the stage acts as (the ECS deploy action's role, or the role the rollout build assumes). ecs: the service's cluster and name (the service module's pipeline_deploy_target)."
  type = list(object({
    name     = string
    role_arn = string
    region   = optional(string)
    ecs = optional(object({
      cluster_name = string
      service_name = string
    }))
  }))

  validation {
    condition     = length(var.environments) >= 1 && length(var.environments) <= 10
    error_message = "environments: 1 to 10 environments."
  }

  validation {
    condition     = length(distinct([for e in var.environments : e.name])) == length(var.environments)
    error_message = "environments: names must be unique (each names a stage)."
  }

  validation {
    condition     = alltrue([for e in var.environments : can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$", e.name))])
    error_message = "environments: a name is 1-32 letters, digits, '-' or '_'."
  }

  validation {
    condition     = alltrue([for e in var.environments : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", e.role_arn))])
    error_message = "environments: role_arn must be an IAM role ARN (no wildcards): the stage may assume exactly this role."
  }

  validation {
    condition     = alltrue([for e in var.environments : (e.ecs != null) == (var.deploy.kind == "ecs")])
    error_message = "environments: ecs (cluster_name, service_name) is required for deploy.kind \"ecs\" and refused otherwise."
  }
}

variable "execution_mode" {
  description = "CodePipeline execution mode. QUEUED (default): executions run one after another, each approval decides exactly one release, none is skipped. SUPERSEDED: a newer execution replaces one waiting between stages, so a release may never reach production. PARALLEL is refused: two rollouts or deployments at once would fight over the same group or service."
  type        = string
  default     = "QUEUED"

  validation {
    condition     = contains(["QUEUED", "SUPERSEDED"], var.execution_mode)
    error_message = "execution_mode must be QUEUED or SUPERSEDED; PARALLEL would run two deployments to one environment at once."
  }
}

variable "approval_topic_arn" {
  description = "Optional SNS topic notified when a stage waits for approval (the message names the AMI id or image digest)."
  type        = string
  default     = null
}

variable "ami_update_trigger" {
  description = "Optional (AMI pipeline only): run the Packer build in CodeBuild when AWS announces a new ECS-optimized AMI (SNS topic_arn, subscribed through the aws.notifications provider; SNS → SQS → EventBridge Pipe → rule → CodeBuild). packer_source is the S3 object (bucket/key.zip) holding the repository with a built RPM; build_commands run in it and must leave Packer's manifest at manifest_file."
  type = object({
    topic_arn      = optional(string, "arn:aws:sns:us-east-1:177427601217:ecs-optimized-amazon-ami-update")
    packer_source  = string
    image          = optional(string, "aws/codebuild/amazonlinux-x86_64-standard:5.0")
    build_commands = optional(list(string), ["packer init packer", "ECS_BOOT_SKIP_RPM=1 packer/build-ami.sh -var rpm_file=$CODEBUILD_SRC_DIR/dist/ecs-boot.rpm"])
    manifest_file  = optional(string, "packer/manifest.json")
    timeout_min    = optional(number, 120)
  })
  default = null

  validation {
    condition     = var.ami_update_trigger == null || var.source_manifest != null
    error_message = "ami_update_trigger needs source_manifest: the Packer build publishes its manifest there."
  }

  validation {
    condition     = var.ami_update_trigger == null || try(can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.ami_update_trigger.topic_arn)), false)
    error_message = "ami_update_trigger.topic_arn must be an SNS topic ARN."
  }

  validation {
    condition     = var.ami_update_trigger == null || try(can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\\.zip$", var.ami_update_trigger.packer_source)), false)
    error_message = "ami_update_trigger.packer_source must be bucket/key.zip."
  }
}

variable "log_retention_days" {
  description = "Retention of the build projects' log groups."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}
