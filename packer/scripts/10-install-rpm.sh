#!/usr/bin/env bash
# Install the ecs-boot RPM (uploaded by Packer to ECS_BOOT_RPM).
# Amazon Linux has dnf, which records the install in its history; without dnf (the Debian-based
# test instance under tests/sim/) plain rpm does: the RPM declares no requires, so no resolver is
# needed. Re-running is harmless: dnf finds it installed, rpm --replacepkgs reinstalls it.
set -euo pipefail

rpm_file="${ECS_BOOT_RPM:-/tmp/ecs-boot.rpm}"
if [ ! -f "$rpm_file" ]; then
  echo "10-install-rpm: no RPM at $rpm_file (set ECS_BOOT_RPM)" >&2
  exit 1
fi

if command -v dnf >/dev/null 2>&1; then
  dnf install -y "$rpm_file"
else
  rpm_flags=(-Uvh --replacepkgs)
  # Debian's rpm refuses to install into the system without this flag.
  if rpm --help 2>/dev/null | grep -q -- '--force-debian'; then
    rpm_flags+=(--force-debian)
  fi
  rpm "${rpm_flags[@]}" "$rpm_file"
fi

rpm -q ecs-boot
test -x /usr/bin/ecs-boot
