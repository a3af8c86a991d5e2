#!/usr/bin/env bash
# Build the ecs-boot RPM that Packer bakes into the AMI, and print its path (last line of stdout).
#
# The binary is linked against glibc 2.26 (cargo-zigbuild with zig's glibc stubs), so one RPM runs
# on Amazon Linux 2 (glibc 2.26) and Amazon Linux 2023 (glibc 2.34). Idempotent: cargo rebuilds
# only what changed, and generate-rpm takes seconds.
#
#   packer/build-rpm.sh                # this host's architecture: x86_64, or aarch64 on Graviton
#   ECS_BOOT_ARCH=aarch64 packer/build-rpm.sh
#                                      # cross-build: needs `rustup target add aarch64-unknown-linux-gnu`,
#                                      # which this project's machines cannot fetch (see README)
#   ECS_BOOT_PROFILE=sim packer/build-rpm.sh
#                                      # the demo's and tests' build: same code, minutes faster to
#                                      # compile (Cargo.toml [profile.sim]); the AMI keeps release
#
# The architecture is the one variable: it picks the Rust target, the RPM's architecture and its
# file name (ecs-boot-VERSION-1.ARCH.rpm), the name packer/ecs-boot.pkr.hcl looks for.
# CARGO_TARGET_DIR moves target/ as it does for cargo. Progress goes to stderr; stdout carries
# only the RPM path.
set -euo pipefail

cd "$(dirname "$0")/.."

arch="${ECS_BOOT_ARCH:-$(uname -m)}"
case "$arch" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *)
    echo "build-rpm.sh: unsupported ECS_BOOT_ARCH=$arch (x86_64 or aarch64)" >&2
    exit 2
    ;;
esac
target="${arch}-unknown-linux-gnu"
target_dir="${CARGO_TARGET_DIR:-target}"
# The cargo profile: `release` (size-optimised, fat LTO) for the AMI unless told otherwise.
profile="${ECS_BOOT_PROFILE:-release}"
case "$profile" in
  release | sim) ;;
  *)
    echo "build-rpm.sh: unsupported ECS_BOOT_PROFILE=$profile (release or sim)" >&2
    exit 2
    ;;
esac
# The glibc of Amazon Linux 2; Amazon Linux 2023 ships 2.34, and glibc is backward compatible.
glibc="${ECS_BOOT_GLIBC:-2.26}"
# The oldest cargo-generate-rpm known to build this RPM (`dir = true` assets make /var/lib/ecs-boot).
generate_rpm_version="0.21.1"

log() { printf 'build-rpm: %s\n' "$*" >&2; }

python_bin() {
  command -v python3 || command -v python
}
py="$(python_bin)"

pip_install() {
  log "installing $1 from PyPI"
  "$py" -m pip install --quiet --disable-pip-version-check "$1" >&2
}

# zig is the C compiler and linker cargo-zigbuild drives; PyPI's ziglang ships the binary, and
# cargo-zigbuild finds it through `python3 -m ziglang` when no zig is on PATH.
"$py" -m ziglang version >/dev/null 2>&1 || pip_install ziglang
# PyPI's cargo-zigbuild is a prebuilt binary: no crates.io compile.
command -v cargo-zigbuild >/dev/null 2>&1 || pip_install cargo-zigbuild

installed_generate_rpm="$(cargo generate-rpm --version 2>/dev/null | awk '{print $NF}' || true)"
if [ -z "$installed_generate_rpm" ] ||
  [ "$(printf '%s\n%s\n' "$generate_rpm_version" "$installed_generate_rpm" | sort -V | head -n1)" != "$generate_rpm_version" ]; then
  log "installing cargo-generate-rpm $generate_rpm_version from crates.io"
  cargo install --locked --quiet "cargo-generate-rpm@$generate_rpm_version" >&2
fi

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  if [ "$arch" != "$(uname -m)" ]; then
    log "the Rust standard library for $target is not installed (rustup target add $target); see packer/README.md"
    exit 1
  fi
fi

# The commit stamped into the binary; build.rs reads it when git is unavailable.
if [ -z "${ECS_BOOT_GIT_COMMIT:-}" ] && git rev-parse --git-dir >/dev/null 2>&1; then
  ECS_BOOT_GIT_COMMIT="$(git rev-parse --short=12 HEAD)"
  export ECS_BOOT_GIT_COMMIT
fi

if [ "$profile" = release ]; then
  profile_args=(--release)
else
  profile_args=(--profile "$profile")
fi
# Only the agent, and without the operator's features (the EC2 SDK for `ecs-boot-fleet rollout`):
# the RPM ships /usr/bin/ecs-boot alone, and the EC2 SDK is the largest crate in the tree to compile.
build_args=(--bin ecs-boot --no-default-features --locked --target "$target.$glibc")
log "cargo zigbuild ${profile_args[*]} ${build_args[*]}"
start=$(date +%s)
cargo zigbuild "${profile_args[@]}" "${build_args[@]}" >&2
log "binary built in $(($(date +%s) - start)) s: $target_dir/$target/$profile/ecs-boot"
packer/slim-agent "$target_dir/$target/$profile/ecs-boot"

# generate-rpm names its output <name>-<version>-<release>.<arch>.rpm under target/<triple>/.
version="$(cargo metadata --no-deps --format-version 1 --offline |
  "$(python_bin)" -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "ecs-boot"))')"
rpm_path="$target_dir/$target/generate-rpm/ecs-boot-$version-1.$arch.rpm"
# gzip, not generate-rpm's default zstd: Amazon Linux 2's rpm 4.11 cannot unpack zstd payloads.
# --target and --profile make generate-rpm package $target_dir/$target/$profile/ecs-boot and set
# the RPM's arch.
cargo generate-rpm --target "$target" --target-dir "$target_dir" --profile "$profile" \
  --payload-compress gzip >&2
if [ ! -f "$rpm_path" ]; then
  log "generate-rpm did not write $rpm_path; found:"
  ls -l "$target_dir/$target/generate-rpm" >&2 || true
  exit 1
fi
log "RPM written"
case "$rpm_path" in
  /*) printf '%s\n' "$rpm_path" ;;
  *) printf '%s\n' "$PWD/$rpm_path" ;;
esac
