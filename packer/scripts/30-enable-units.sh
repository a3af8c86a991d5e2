#!/usr/bin/env bash
# Enable ecs-boot.service so it runs at every boot of instances launched from the AMI.
# ecs.service is neither started nor stopped here: ecs-boot writes /etc/ecs/ecs.config at boot, and
# the RPM's drop-in (ExecStartPre=/usr/bin/ecs-boot gate) keeps the agent from starting before.
set -euo pipefail

# Reload only where systemd runs: an image build in a chroot or container has no manager to reload
# and reads the unit files at its first boot anyway.
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi

# `enable` works without a running systemd: it only creates the [Install] symlinks.
systemctl enable ecs-boot.service

if ! systemctl is-enabled --quiet ecs-boot.service; then
  echo "30-enable-units: ecs-boot.service is not enabled" >&2
  exit 1
fi
echo "30-enable-units: ecs-boot.service enabled"
