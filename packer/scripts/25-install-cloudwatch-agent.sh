#!/usr/bin/env bash
# Bake the CloudWatch agent into the AMI (host logs, disk and memory; configured at each boot by
# ecs-boot-cloudwatch-agent.service from the trusted config). An RPM, not a container image:
# instances in private subnets without NAT cannot reach a public registry, and ECR Public has no
# VPC endpoint; the instance never downloads anything for it.
#
# CLOUDWATCH_AGENT_RPM (a path, or an https:// or s3:// URL the builder can fetch) overrides the
# Amazon Linux repositories. The agent must read journald (AL2023 has no /var/log/messages):
# 1.300070.0 or newer (docs/aws-facts.md, "CloudWatch agent"); an older one fails the build.
# Without dnf or yum (the Debian-based simulated instance, tests/sim) there is no agent to
# install: said, not failed, and the unit's ConditionPathExists skips it at boot.
set -euo pipefail

min_version="1.300070.0"
rpm_source="${CLOUDWATCH_AGENT_RPM:-}"
ctl=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl

if command -v dnf >/dev/null 2>&1; then
  installer=dnf
elif command -v yum >/dev/null 2>&1; then
  installer=yum
else
  echo "25-install-cloudwatch-agent: no dnf or yum (not Amazon Linux): the CloudWatch agent is not installed"
  exit 0
fi

if [ -n "$rpm_source" ]; then
  local_rpm="$rpm_source"
  case "$rpm_source" in
    https://*)
      local_rpm=/tmp/amazon-cloudwatch-agent.rpm
      curl --fail --silent --show-error --location --proto '=https' -o "$local_rpm" "$rpm_source"
      ;;
    s3://*)
      local_rpm=/tmp/amazon-cloudwatch-agent.rpm
      aws s3 cp --only-show-errors "$rpm_source" "$local_rpm"
      ;;
  esac
  "$installer" install -y "$local_rpm"
  if [ "$local_rpm" = /tmp/amazon-cloudwatch-agent.rpm ]; then
    rm -f "$local_rpm"
  fi
else
  "$installer" install -y amazon-cloudwatch-agent
fi

version="$(rpm -q --qf '%{VERSION}' amazon-cloudwatch-agent)"
lowest="$(printf '%s\n%s\n' "$min_version" "$version" | sort -V | head -n1)"
if [ "$lowest" != "$min_version" ]; then
  echo "25-install-cloudwatch-agent: amazon-cloudwatch-agent $version cannot read journald;" \
    "$min_version or newer is needed (set the Packer variable cloudwatch_agent_rpm)" >&2
  exit 1
fi
test -x "$ctl"

# ecs-boot-cloudwatch-agent.service starts it with the config it renders; the agent's own unit
# must not start first with none.
systemctl disable amazon-cloudwatch-agent.service >/dev/null 2>&1 || true
systemctl enable ecs-boot-cloudwatch-agent.service
echo "25-install-cloudwatch-agent: amazon-cloudwatch-agent $version installed; ecs-boot-cloudwatch-agent.service enabled"
