#!/usr/bin/env bash
# Install the ecs-boot RPM (uploaded by Packer to ECS_BOOT_RPM).
# Amazon Linux 2023 has dnf (Amazon Linux 2: yum), which records the install in its history;
# without either (the Debian-based test instance under tests/sim/) plain rpm does: the RPM
# requires nothing but /bin/sh for its scriptlets, so no resolver is needed. Re-running is
# harmless: dnf finds it installed, rpm --replacepkgs reinstalls it.
set -euo pipefail

rpm_file="${ECS_BOOT_RPM:-/tmp/ecs-boot.rpm}"
if [ ! -f "$rpm_file" ]; then
  echo "10-install-rpm: no RPM at $rpm_file (set ECS_BOOT_RPM)" >&2
  exit 1
fi

if command -v dnf >/dev/null 2>&1; then
  dnf install -y "$rpm_file"
elif command -v yum >/dev/null 2>&1; then
  yum install -y "$rpm_file"
else
  rpm_flags=(-Uvh --replacepkgs)
  # Not `rpm --help | grep -q`: with pipefail, grep's early exit fails the pipeline (SIGPIPE).
  rpm_help="$(rpm --help 2>&1 || true)"
  if [[ "$rpm_help" == *--force-debian* ]]; then
    # Debian's rpm refuses to install into the system without --force-debian, and its RPM
    # database knows none of the system's packages, so even the scriptlets' /bin/sh (the only
    # requirement the RPM declares besides rpmlib features) looks missing: skip the check there.
    rpm_flags+=(--force-debian --nodeps)
  fi
  rpm "${rpm_flags[@]}" "$rpm_file"
fi

rpm -q ecs-boot
test -x /usr/bin/ecs-boot
