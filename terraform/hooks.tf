# Lifecycle hooks ecs-boot completes, as separate resources: a change to a hook (timeout, name,
# result) or to the drainer updates or replaces the hook only. As initial_lifecycle_hook on the
# group, any such change would replace the whole group and kill every instance undrained
# (terraform-provider-aws PR #34260). The hooks exist once the group does, so the group is
# created at min_size (0 by default) and managed scaling launches instances afterwards.
# Their names reach ecs-boot through user data ([lifecycle], user_data.tf), never a tag.

locals {
  launch_hook_name    = coalesce(var.launch_hook.name, "${var.name}-launch")
  terminate_hook_name = coalesce(var.terminate_hook.name, "${var.name}-terminate")

  # One drainer only: with ECS managed draining, ECS adds its own termination hook
  # (ecs-managed-draining-termination-hook) and ecs-boot must not drain a second time.
  terminate_hook_enabled = var.drainer == "ecs-boot"

  # Longer than the drain deadline, so the hook outlives a drain even between heartbeats; capped
  # at what Auto Scaling accepts.
  terminate_heartbeat_timeout = coalesce(var.terminate_hook.heartbeat_timeout, min(7200, var.drain_deadline + 120))
}

resource "aws_autoscaling_lifecycle_hook" "launch" {
  name                   = local.launch_hook_name
  autoscaling_group_name = aws_autoscaling_group.this.name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_LAUNCHING"
  heartbeat_timeout      = var.launch_hook.heartbeat_timeout
  # ABANDON: an instance whose agent never registers is replaced, not put in service.
  default_result = var.launch_hook.default_result
}

resource "aws_autoscaling_lifecycle_hook" "terminate" {
  count = local.terminate_hook_enabled ? 1 : 0

  name                   = local.terminate_hook_name
  autoscaling_group_name = aws_autoscaling_group.this.name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = local.terminate_heartbeat_timeout
  # CONTINUE: ABANDON would skip the other termination hooks still running.
  default_result = var.terminate_hook.default_result

  lifecycle {
    precondition {
      condition     = local.terminate_heartbeat_timeout >= var.drain_deadline && local.terminate_heartbeat_timeout <= 7200
      error_message = "terminate_hook.heartbeat_timeout must be at least drain_deadline (and at most 7200): the hook would give up in the middle of a drain."
    }
  }
}
