################################################################################
# The service and its image pipeline. Push <repository>:release-<version> and the pipeline
# records it by digest, deploys it to dev (this account's service) and, when var.prod is set,
# waits for an approval naming the digest before deploying it to production.
################################################################################

module "web_images" {
  source = "../../modules/pipeline"
  # The image pipeline does not use AWS's AMI topic; the module still takes the provider.
  providers = { aws = aws, aws.notifications = aws }

  name         = "${var.name}-web"
  source_image = { repository_name = "${var.name}/web" }
  deploy       = { kind = "ecs", container_name = "app" }
  environments = concat(
    [{
      name     = "dev"
      role_arn = local.deploy_role_arn
      # Names, not the service module's outputs: the repository the service pulls from is part of
      # this pipeline, so the pipeline cannot wait for the service.
      ecs = { cluster_name = var.name, service_name = local.service_name }
    }],
    var.prod == null ? [] : [{
      name     = "prod"
      role_arn = var.prod.role_arn
      ecs      = { cluster_name = var.prod.cluster_name, service_name = var.prod.service_name }
    }],
  )
}

module "web" {
  source = "../../modules/service"

  name        = local.service_name
  cluster_arn = module.cluster.cluster_arn
  capacity_provider_strategy = [
    { capacity_provider = module.on_demand.capacity_provider_name, base = 1, weight = 1 },
    { capacity_provider = module.spot.capacity_provider_name, weight = 3 },
  ]
  container = {
    image         = var.initial_image
    port          = 80
    readonly_root = false # nginx writes its cache and pid file
  }
  desired_count       = 2
  ecr_repository_arns = [module.web_images.ecr_repository_arn]

  # The shorter of the two groups' deadlines: a task on spot must be out of the load balancer by
  # then too.
  drain_deadline_seconds = min(values(local.drain_deadline)...)
  load_balancer = {
    vpc_id               = module.network.vpc_id
    listener_arn         = aws_lb_listener.https.arn
    priority             = 10
    deregistration_delay = 60
  }

  # require_ready_attribute (default true): tasks land only where ecs-boot.ready == true.
}

# --- the dev environment's deploy role (this account) -----------------------------------------
# Named up front so the pipeline can be given its ARN while the role trusts the pipeline's role.

locals {
  service_name     = "web"
  deploy_role_name = "${var.name}-web-deploy"
  deploy_role_arn  = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:role/${local.deploy_role_name}"
}

data "aws_iam_policy_document" "deploy_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [module.web_images.pipeline_role_arn]
    }
  }
}

resource "aws_iam_role" "deploy" {
  name               = local.deploy_role_name
  description        = "The web pipeline's dev stage: deploys new task definitions of the web service"
  assume_role_policy = data.aws_iam_policy_document.deploy_assume.json
}

data "aws_iam_policy_document" "deploy" {
  #checkov:skip=CKV_AWS_356:ecs:RegisterTaskDefinition and ecs:DescribeTaskDefinition support no resource-level scope.
  statement {
    sid       = "UpdateTheService"
    actions   = ["ecs:DescribeServices", "ecs:UpdateService"]
    resources = [module.web.service_arn]
  }

  # No resource-level scope exists for task definition registration and lookup.
  statement {
    sid       = "RegisterRevisions"
    actions   = ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "TagRevisionsOfThisFamily"
    actions   = ["ecs:TagResource"]
    resources = ["arn:aws:ecs:${var.region}:${data.aws_caller_identity.current.account_id}:task-definition/${module.web.task_definition_family}:*"]
  }

  statement {
    sid       = "PassTheServiceRoles"
    actions   = ["iam:PassRole"]
    resources = module.web.pass_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadTheArtifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["arn:aws:s3:::${module.web_images.artifact_bucket}/*"]
  }

  statement {
    sid       = "DecryptTheArtifacts"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [module.web_images.artifact_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "deploy"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}
