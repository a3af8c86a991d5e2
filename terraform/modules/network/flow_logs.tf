################################################################################
# VPC flow logs (accepted and rejected traffic) to a KMS-encrypted log group
################################################################################

locals {
  flow_log_group_name = coalesce(var.flow_logs.log_group_name, "/vpc/${var.name}/flow-logs")
  # Built from the name, not read from the log group: the key policy must exist before the group
  # that is encrypted with the key.
  flow_log_group_arn = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:log-group:${local.flow_log_group_name}"
}

data "aws_iam_policy_document" "flow_logs_key" {
  # A key policy's Resource "*" means this key only; the account root statement is the standard
  # way to let IAM policies administer it.
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key; root delegation to IAM is required.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key; root delegation to IAM is required.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is this key; root delegation to IAM is required.
  statement {
    sid       = "AccountAdministersKey"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  # CloudWatch Logs may use the key for this one log group only: the encryption context names the
  # group exactly (ArnEquals, no wildcard).
  statement {
    sid       = "CloudWatchLogsForFlowLogGroup"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.id}.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [local.flow_log_group_arn]
    }
  }
}

resource "aws_kms_key" "flow_logs" {
  description             = "${var.name} VPC flow logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.flow_logs_key.json

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = local.flow_log_group_name
  retention_in_days = var.flow_logs.retention_in_days
  kms_key_id        = aws_kms_key.flow_logs.arn

  tags = var.tags
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# A prefix by default, not a name: IAM is global, and the same VPC name in two regions must not
# collide.
resource "aws_iam_role" "flow_logs" {
  name               = var.flow_logs.iam_role_name
  name_prefix        = var.flow_logs.iam_role_name == null ? "${var.name}-flow-logs-" : null
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow_logs.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

resource "aws_flow_log" "this" {
  vpc_id               = aws_vpc.this.id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs.arn
  iam_role_arn         = aws_iam_role.flow_logs.arn

  tags = var.tags
}
