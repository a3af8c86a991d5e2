# Lifecycle hooks ecs-boot completes. They are created with the group (initial_lifecycle_hook in
# main.tf) and their names are also published as the instance tags ecs-boot:launch-hook and
# ecs-boot:terminate-hook, so the agent needs no DescribeLifecycleHooks round trip.

locals {
  launch_hook_name    = coalesce(var.launch_hook.name, "${var.name}-launch")
  terminate_hook_name = coalesce(var.terminate_hook.name, "${var.name}-terminate")

  # One drainer only: with ECS managed draining, ECS adds its own termination hook
  # (ecs-managed-draining-termination-hook) and ecs-boot must not drain a second time.
  terminate_hook_enabled = var.drainer == "ecs-boot"

  launch_hook = {
    name                 = local.launch_hook_name
    lifecycle_transition = "autoscaling:EC2_INSTANCE_LAUNCHING"
    heartbeat_timeout    = var.launch_hook.heartbeat_timeout
    # ABANDON: an instance whose agent never registers is replaced, not put in service.
    default_result = var.launch_hook.default_result
  }

  terminate_hook = {
    name                 = local.terminate_hook_name
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    heartbeat_timeout    = var.terminate_hook.heartbeat_timeout
    # CONTINUE: ABANDON would skip the other termination hooks still running.
    default_result = var.terminate_hook.default_result
  }

  lifecycle_hooks = concat(
    [local.launch_hook],
    local.terminate_hook_enabled ? [local.terminate_hook] : [],
  )
}
