################################################################################
# Optional: a new ECS-optimized AMI from AWS starts the Packer build.
#
#   AWS's SNS topic (us-east-1) -> SQS queue -> EventBridge Pipe -> default event bus
#     -> rule (source ecs-boot.ami-update) -> CodeBuild "packer"
#
# SNS cannot start CodeBuild, and a Lambda function would need a code package; the queue also
# keeps an announcement that arrives while the target is unavailable. The build publishes its
# manifest to source_manifest, whose new version starts the pipeline.
################################################################################

locals {
  ami_update        = var.ami_update_trigger != null
  ami_update_source = "ecs-boot.ami-update"
  default_bus_arn   = "arn:${local.partition}:events:${local.region}:${local.account_id}:event-bus/default"
}

resource "aws_sqs_queue" "ami_update" {
  count = local.ami_update ? 1 : 0

  name                       = "${var.name}-ami-update"
  sqs_managed_sse_enabled    = true
  message_retention_seconds  = 1209600
  visibility_timeout_seconds = 60
  tags                       = var.tags
}

data "aws_iam_policy_document" "ami_update_queue" {
  count = local.ami_update ? 1 : 0

  statement {
    sid       = "OnlyTheAmiTopicSends"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.ami_update[0].arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.ami_update_trigger.topic_arn]
    }
  }
}

resource "aws_sqs_queue_policy" "ami_update" {
  count = local.ami_update ? 1 : 0

  queue_url = aws_sqs_queue.ami_update[0].id
  policy    = data.aws_iam_policy_document.ami_update_queue[0].json
}

resource "aws_sns_topic_subscription" "ami_update" {
  count    = local.ami_update ? 1 : 0
  provider = aws.notifications

  topic_arn = var.ami_update_trigger.topic_arn
  protocol  = "sqs"
  endpoint  = aws_sqs_queue.ami_update[0].arn

  depends_on = [aws_sqs_queue_policy.ami_update]
}

resource "aws_pipes_pipe" "ami_update" {
  count = local.ami_update ? 1 : 0

  name     = "${var.name}-ami-update"
  role_arn = aws_iam_role.ami_update_pipe[0].arn
  source   = aws_sqs_queue.ami_update[0].arn
  target   = local.default_bus_arn
  tags     = var.tags

  source_parameters {
    sqs_queue_parameters {
      batch_size = 1
    }
  }

  target_parameters {
    eventbridge_event_bus_parameters {
      source      = local.ami_update_source
      detail_type = "ECS-optimized AMI update"
    }
  }

  depends_on = [aws_iam_role_policy.ami_update_pipe]
}

resource "aws_cloudwatch_event_rule" "ami_update" {
  count = local.ami_update ? 1 : 0

  name        = "${var.name}-ami-update"
  description = "An ECS-optimized AMI announcement (through the ${var.name}-ami-update pipe) starts the Packer build"
  tags        = var.tags

  event_pattern = jsonencode({
    source      = [local.ami_update_source]
    detail-type = ["ECS-optimized AMI update"]
  })
}

resource "aws_cloudwatch_event_target" "ami_update" {
  count = local.ami_update ? 1 : 0

  rule     = aws_cloudwatch_event_rule.ami_update[0].name
  arn      = aws_codebuild_project.this["packer"].arn
  role_arn = aws_iam_role.events.arn
  # The announcement's content is not passed on: the build takes the base AMI from AWS's SSM
  # parameter itself.
  input = "{}"
}

data "aws_iam_policy_document" "pipes_assume" {
  count = local.ami_update ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["pipes.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "ami_update_pipe" {
  count = local.ami_update ? 1 : 0

  name_prefix        = "${substr(var.name, 0, 24)}-amipipe-"
  assume_role_policy = data.aws_iam_policy_document.pipes_assume[0].json
  tags               = var.tags
}

data "aws_iam_policy_document" "ami_update_pipe" {
  count = local.ami_update ? 1 : 0

  statement {
    sid       = "ReadTheQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.ami_update[0].arn]
  }

  statement {
    sid       = "PutOnTheDefaultBus"
    actions   = ["events:PutEvents"]
    resources = [local.default_bus_arn]
  }
}

resource "aws_iam_role_policy" "ami_update_pipe" {
  count = local.ami_update ? 1 : 0

  name   = "pipe"
  role   = aws_iam_role.ami_update_pipe[0].id
  policy = data.aws_iam_policy_document.ami_update_pipe[0].json
}
