#!/usr/bin/env bash
# Bake the deployment's config.toml (uploaded by Packer to ECS_BOOT_CONFIG) over the RPM's
# commented default. Without one, the default stays.
set -euo pipefail

config_file="${ECS_BOOT_CONFIG:-/tmp/ecs-boot-config.toml}"
if [ ! -f "$config_file" ]; then
  echo "20-install-config: no config at $config_file; keeping the RPM's default /etc/ecs-boot/config.toml"
  exit 0
fi

# Copy beside the target, then rename: a reader never sees half a config.
install -d -m 0755 /etc/ecs-boot
install -m 0644 -o root -g root "$config_file" /etc/ecs-boot/config.toml.tmp
mv -f /etc/ecs-boot/config.toml.tmp /etc/ecs-boot/config.toml
echo "20-install-config: installed $config_file as /etc/ecs-boot/config.toml"
