#!/bin/sh
# Drains an Auto Scaling group before `terraform destroy` deletes its lifecycle hooks, instance
# permissions, capacity provider and cluster (terraform_data.drain_on_destroy, destroy.tf):
# scale to zero, lift scale-in protection, wait until no instance is left. Every instance goes
# through the terminate hook on its way out, so ecs-boot (or ECS managed draining) drains it.
#
# Environment: ECS_BOOT_GROUP, ECS_BOOT_REGION, ECS_BOOT_DRAIN_TIMEOUT (seconds), ECS_BOOT_CLUSTER
# (for messages); the AWS CLI's own variables (credentials, AWS_PROFILE, AWS_ENDPOINT_URL) as
# Terraform was run. Idempotent: a group already gone or empty is done. Exits non-zero when the
# deadline passes, so the destroy stops before anything the draining instances use is deleted.
set -eu

group=${ECS_BOOT_GROUP:?ECS_BOOT_GROUP is not set}
region=${ECS_BOOT_REGION:?ECS_BOOT_REGION is not set}
timeout=${ECS_BOOT_DRAIN_TIMEOUT:?ECS_BOOT_DRAIN_TIMEOUT is not set}
cluster=${ECS_BOOT_CLUSTER:-}

say() { echo "drain-group: $group: $*" >&2; }

if ! command -v aws >/dev/null 2>&1; then
  say "the AWS CLI (aws) is not on the PATH of the machine running terraform. Install it and run" \
    "terraform destroy again, or set drain_on_destroy = false to delete the group without" \
    "draining its instances. Nothing has been deleted."
  exit 1
fi

asg() { aws autoscaling --region "$region" --output text "$@"; }

# One JMESPath query over the group; an absent group reads as "none".
query() {
  asg describe-auto-scaling-groups --auto-scaling-group-names "$group" --query "$1"
}

if [ "$(query 'length(AutoScalingGroups)')" = 0 ]; then
  say "no such group: nothing to drain"
  exit 0
fi

# max 0 too: ECS managed scaling must not launch instances back while the group drains.
asg update-auto-scaling-group --auto-scaling-group-name "$group" \
  --min-size 0 --max-size 0 --desired-capacity 0
say "scaled to 0; waiting up to ${timeout}s while every instance drains${cluster:+ out of cluster $cluster}"

start=$(date +%s)
while :; do
  # One line per instance: id, lifecycle state, protected from scale-in (True/False).
  instances=$(query 'AutoScalingGroups[].Instances[].[InstanceId,LifecycleState,ProtectedFromScaleIn]')
  left=$(printf '%s' "$instances" | awk 'NF { n++ } END { print n + 0 }')
  [ "$left" = 0 ] && break
  # Protected instances are never scaled in; managed termination protection protects every
  # instance running tasks. Lifted on every round: the call is idempotent, and ECS may protect
  # an instance again until it is Terminating.
  protected=$(printf '%s' "$instances" | awk '$2 == "InService" && $3 == "True" { print $1 }')
  if [ -n "$protected" ]; then
    # At most 50 instances per call (API limit).
    printf '%s\n' "$protected" | xargs -n 50 aws autoscaling --region "$region" \
      set-instance-protection --auto-scaling-group-name "$group" --no-protected-from-scale-in \
      --instance-ids || say "lifting scale-in protection failed; trying again next round"
  fi
  standby=$(printf '%s' "$instances" | awk '$2 == "Standby" { n++ } END { print n + 0 }')
  if [ "$standby" = "$left" ]; then
    say "$left instance(s) left, all in Standby, which scaling never terminates: move them out" \
      "of Standby (or terminate them) and run terraform destroy again"
    exit 1
  fi
  waited=$(($(date +%s) - start))
  if [ "$waited" -ge "$timeout" ]; then
    say "$left instance(s) still in the group after ${waited}s (deadline ${timeout}s): stopping" \
      "the destroy here, before the hooks, permissions and cluster they drain with are deleted"
    exit 1
  fi
  say "$left instance(s) left after ${waited}s"
  # 5-7 s, jittered: several groups draining at once do not poll in step.
  sleep $((5 + $(od -An -N1 -tu1 /dev/urandom) % 3))
done
say "drained: no instance left"
