#!/usr/bin/env bash
# Build the RPM (packer/build-rpm.sh), then the AMI with Packer, tagging it with the ecs-boot
# version and the git commit. Extra arguments go to `packer build`, e.g.
#
#   packer/build-ami.sh -var region=eu-west-1 -var subnet_id=subnet-0123 -var config_file=my.toml
#
# Needs Packer >= 1.9 with AWS credentials in the environment, and python3 with boto3 for the
# handoff (publish-ami.py). The architecture defaults to this host's: on a Graviton (arm64) host
# the same command builds the aarch64 RPM natively and an arm64 AMI. ECS_BOOT_ARCH=arm64 on an
# x86_64 host builds the arm64 AMI from an aarch64 RPM built elsewhere (-var rpm_file=..., see
# README.md). The base is -var base_os=al2023 (default) or al2.
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${ECS_BOOT_ARCH:-$(uname -m)}"
case "$arch" in
  x86_64 | amd64) arch=x86_64 rpm_arch=x86_64 ;;
  arm64 | aarch64) arch=arm64 rpm_arch=aarch64 ;;
  *)
    echo "build-ami.sh: unsupported ECS_BOOT_ARCH=$arch (x86_64 or arm64)" >&2
    exit 2
    ;;
esac

version="$(cargo metadata --no-deps --format-version 1 --offline |
  python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "ecs-boot"))')"
commit="$(git rev-parse HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  # The AMI then says it holds uncommitted work.
  commit="$commit-dirty"
fi

rpm_args=()
if [ "$rpm_arch" = "$(uname -m)" ] && [ -z "${ECS_BOOT_SKIP_RPM:-}" ]; then
  rpm="$(ECS_BOOT_ARCH="$rpm_arch" packer/build-rpm.sh | tail -n1)"
  rpm_args=(-var "rpm_file=$rpm")
fi

packer init packer
exec packer build \
  -var "architecture=$arch" \
  -var "ecs_boot_version=$version" \
  -var "git_commit=$commit" \
  ${rpm_args[@]+"${rpm_args[@]}"} \
  "$@" \
  packer
