# `terraform destroy` drains every instance while its terminate hook, permissions, capacity
# provider and cluster still exist.
#
# The group's own delete (force_delete = false) scales it to zero and waits, but it runs last:
# the hook resources depend on the group, so Terraform deletes them first and the instances then
# terminate with no hook, undrained. initial_lifecycle_hook would keep the hooks until AWS deletes
# them with the group, but hashicorp/aws replaces the whole group when such a hook changes, and
# ignores the change under ignore_changes (README "terraform destroy"). So this resource, which
# depends on the hooks, the group and the capacity provider, is destroyed first: its destroy-time
# provisioner scales the group to zero and waits until every instance has gone through the
# terminate hook. Only then does Terraform delete the hooks, the group, the policies and the
# cluster. A failed or timed-out drain stops the destroy before any of them is deleted.

locals {
  drain_on_destroy = var.drain_on_destroy && !var.force_delete
}

resource "terraform_data" "drain_on_destroy" {
  count = local.drain_on_destroy ? 1 : 0

  # input, not triggers_replace: a change updates this resource in place. Replacing it would run
  # the destroy-time drain and empty the group in the middle of an apply.
  input = {
    group = aws_autoscaling_group.this.name
    # The cluster once its capacity providers are associated (when this module makes it), so the
    # association outlives the drain too.
    cluster     = var.create_cluster ? module.cluster[0].cluster_name : var.cluster_name
    region      = local.region
    timeout     = local.delete_timeout_seconds
    script      = "${path.module}/scripts/drain-group.sh"
    environment = var.drain_on_destroy_environment
  }

  depends_on = [
    aws_autoscaling_lifecycle_hook.launch,
    aws_autoscaling_lifecycle_hook.terminate,
    aws_ecs_capacity_provider.this, # ECS managed draining's own hook (drainer = "ecs-managed")
  ]

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/sh"]
    command     = self.input.script
    environment = merge(self.input.environment, {
      ECS_BOOT_GROUP         = self.input.group
      ECS_BOOT_CLUSTER       = self.input.cluster
      ECS_BOOT_REGION        = self.input.region
      ECS_BOOT_DRAIN_TIMEOUT = self.input.timeout
    })
  }
}
