################################################################################
# Logs and alerts: a log group for the instances' logs; EventBridge rules that send to an SNS topic
# the cluster's tasks that failed (by stopCode) and this group's failed instance refreshes.
################################################################################

locals {
  create_kms_key = var.kms_key_arn == null
  kms_key_arn    = local.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn

  log_group_name = "/ecs-boot/${var.name}"
  log_group_arn  = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"

  task_failure_rule_name = "${var.name}-task-failed"
  # Built from the name: the key and topic policies need it before the rule exists.
  task_failure_rule_arn = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${local.task_failure_rule_name}"

  refresh_failure_rule_name = "${var.name}-refresh-failed"
  refresh_failure_rule_arn  = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${local.refresh_failure_rule_name}"

  # Stopped tasks worth an alert. Not: ServiceSchedulerInitiated (deployments, scale-in, drains),
  # SpotInterruption, TerminationNotice (instances going away: the drain moves their tasks) and
  # UserInitiated (someone stopped it on purpose).
  alert_stop_codes = ["EssentialContainerExited", "TaskFailedToStart"]
}

data "aws_iam_policy_document" "kms" {
  count = local.create_kms_key ? 1 : 0
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key; root delegation to IAM is required.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key; root delegation to IAM is required.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is this key; root delegation to IAM is required.

  # Key administration stays with the account's IAM policies, as for any KMS key.
  statement {
    sid       = "AccountAdministersKey"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsForThisLogGroup"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:DescribeKey",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [local.log_group_arn]
    }
  }

  # CloudWatch alarms (alarms.tf) must encrypt what they publish to the encrypted topic.
  statement {
    sid       = "CloudWatchAlarmsPublishToTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }

  # EventBridge must encrypt what it publishes to the encrypted topic.
  statement {
    sid       = "EventBridgePublishesToTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  count = local.create_kms_key ? 1 : 0

  description             = "ecs-boot ${var.name}: log group and task-failure topic"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms[0].json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  count = local.create_kms_key ? 1 : 0

  name          = "alias/ecs-boot/${var.name}"
  target_key_id = aws_kms_key.this[0].key_id
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic" "task_failures" {
  name              = "${var.name}-task-failures"
  kms_master_key_id = local.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "task_failures_topic" {
  statement {
    sid       = "OnlyThisRulePublishes"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.task_failures.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.task_failure_rule_arn, local.refresh_failure_rule_arn]
    }
  }

  # The module's alarms (alarms.tf), named after the group.
  statement {
    sid       = "OnlyThisGroupsAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.task_failures.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name}-*"]
    }
  }
}

resource "aws_sns_topic_policy" "task_failures" {
  arn    = aws_sns_topic.task_failures.arn
  policy = data.aws_iam_policy_document.task_failures_topic.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.task_failures.arn
  protocol  = "email"
  endpoint  = each.value
}

# One rule per cluster is enough: with several groups in a cluster, enable it on one of them
# (task_failure_alerts).
resource "aws_cloudwatch_event_rule" "task_failed" {
  count = var.task_failure_alerts ? 1 : 0

  name        = local.task_failure_rule_name
  description = "Tasks of ${local.cluster_name} that failed: an essential container exited, or the task never started"

  # Matching stopCode, not exit codes: a task that never started has none, and drains and
  # deployments (ServiceSchedulerInitiated, SpotInterruption, TerminationNotice, UserInitiated)
  # stay quiet.
  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn = [local.cluster_arn]
      lastStatus = ["STOPPED"]
      stopCode   = local.alert_stop_codes
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "task_failed" {
  count = var.task_failure_alerts ? 1 : 0

  rule      = aws_cloudwatch_event_rule.task_failed[0].name
  target_id = "sns"
  arn       = aws_sns_topic.task_failures.arn
}

# A failed instance refresh leaves the group on two launch template versions (or rolled back):
# someone must look.
resource "aws_cloudwatch_event_rule" "refresh_failed" {
  name        = local.refresh_failure_rule_name
  description = "Instance refreshes of ${var.name} that failed"

  event_pattern = jsonencode({
    source        = ["aws.autoscaling"]
    "detail-type" = ["EC2 Auto Scaling Instance Refresh Failed"]
    detail = {
      AutoScalingGroupName = [var.name]
    }
  })

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "refresh_failed" {
  rule      = aws_cloudwatch_event_rule.refresh_failed.name
  target_id = "sns"
  arn       = aws_sns_topic.task_failures.arn
}
