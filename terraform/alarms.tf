################################################################################
# Alarms on the instances: what ecs-boot publishes itself (src/metrics: any ABANDON, the p90 boot
# over its budget, a drain that hit its deadline, an essential system container that died) and
# what the CloudWatch agent reports (disk of the root and Docker volumes, memory available). All
# go to the alert topic. Every metric carries AutoScalingGroupName (= var.name); ecs-boot's also
# ClusterName. Missing data is not breaching: most of these metrics exist only when something
# happened (a boot, a drain).
################################################################################

locals {
  metrics_namespace = var.metrics.namespace
  create_alarms     = var.metrics.enabled && var.metrics.alarms

  ecs_boot_dimensions = {
    AutoScalingGroupName = var.name
    ClusterName          = local.cluster_name
  }

  # One alarm per event metric ecs-boot sends: name suffix => (metric, what it means).
  event_alarms = {
    abandon = {
      metric      = "Abandons"
      description = "An instance of ${var.name} failed its boot: ecs-boot ABANDONed the launch hook. Its evidence is under the recorder location (README: When a boot fails)."
    }
    drain-deadline = {
      metric      = "DrainDeadlineHit"
      description = "A drain on ${var.name} reached its deadline with tasks still running: they were stopped with the instance."
    }
    essential-container = {
      metric      = "EssentialContainerFailures"
      description = "An essential system container on an instance of ${var.name} died for good: the instance is marked not ready (ecs-boot.ready=false)."
    }
  }

  host_alarms = merge(
    {
      for key, path in { disk-root = "/", disk-docker = "/var/lib/docker" } : key => {
        metric                     = "disk_used_percent"
        dimensions                 = { AutoScalingGroupName = var.name, path = path }
        statistic                  = "Maximum"
        comparison                 = "GreaterThanThreshold"
        threshold                  = var.metrics.disk_used_percent
        description                = "An instance of ${var.name} has ${path} over ${var.metrics.disk_used_percent}% full (image layers are the usual cause: see ECS_IMAGE_CLEANUP_* in the README)."
      }
    },
    {
      memory = {
        metric      = "mem_available_percent"
        dimensions  = { AutoScalingGroupName = var.name }
        statistic   = "Minimum"
        comparison  = "LessThanThreshold"
        threshold   = var.metrics.memory_available_percent
        description = "An instance of ${var.name} has less than ${var.metrics.memory_available_percent}% of its memory available."
      }
    },
  )

  alarm_actions = [aws_sns_topic.task_failures.arn]
}

resource "aws_cloudwatch_metric_alarm" "event" {
  for_each = local.create_alarms ? local.event_alarms : {}

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = local.metrics_namespace
  metric_name         = each.value.metric
  dimensions          = local.ecs_boot_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "boot_duration" {
  count = local.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-boot-duration"
  alarm_description   = "The p90 boot of ${var.name} (ecs-boot start to the launch hook's CONTINUE) took longer than ${var.metrics.boot_duration_budget}s over the last hour."
  namespace           = local.metrics_namespace
  metric_name         = "BootDuration"
  dimensions          = local.ecs_boot_dimensions
  extended_statistic  = "p90"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.metrics.boot_duration_budget
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

# The CloudWatch agent's series: disk per group and mount point, memory per group (its
# aggregation_dimensions), the worst instance of the group.
resource "aws_cloudwatch_metric_alarm" "host" {
  for_each = local.create_alarms ? local.host_alarms : {}

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = local.metrics_namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = 2
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}
