#!/usr/bin/env bash
# Golden-image cleanup, the last provisioning step: remove everything that would make instances
# launched from the AMI share an identity or inherit this builder's state. It covers what
# aws/amazon-ecs-ami's cleanup.sh removes (hostname, package-manager history and caches, /tmp,
# logs, machine-id, cloud-init state, SSH host keys) plus ecs-boot's and the ECS agent's state.
# Every step tolerates its subject being absent: Amazon Linux 2023 (dnf, journald only),
# Amazon Linux 2 (yum, rsyslog files beside a volatile journal) and the Debian-based test instance
# (no cloud-init, dnf or ECS agent).
set -euo pipefail

log() { printf '90-cleanup: %s\n' "$*"; }

# Overwrite, then delete: deleted secrets would otherwise survive in the snapshot's free blocks.
shred_files() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    shred -zuf -- "$f" 2>/dev/null || rm -f -- "$f"
    if [ -e "$f" ]; then
      log "could not delete $f" >&2
      exit 1
    fi
    log "deleted $f"
  done
}

# Empty a directory but keep it, with its owner and mode, for the package that owns it.
empty_dir() {
  local d="$1"
  [ -d "$d" ] || return 0
  find "$d" -mindepth 1 -delete
  log "emptied $d"
}

systemd_running() { [ -d /run/systemd/system ]; }

# Whether PATH is a mount point or has one below it. Bind mounts (a container's /etc/hostname, the
# test instance's read-only uploads under /tmp) cannot be deleted and are not part of an AMI.
holds_mount() {
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# Empty a scratch directory (/tmp, /var/tmp), keeping the mounts in it.
empty_scratch_dir() {
  local d="$1" entry
  [ -d "$d" ] || return 0
  while IFS= read -r -d '' entry; do
    if holds_mount "$entry"; then
      log "kept $entry (a mount, not part of an AMI snapshot)"
      continue
    fi
    rm -rf -- "$entry"
  done < <(find "$d" -mindepth 1 -maxdepth 1 -print0)
  log "emptied $d"
}

# 1. The ECS agent. On the builder, ecs.service started at boot before ecs-boot was installed and
# may have written a checkpoint (cluster, container instance ARN) under /var/lib/ecs/data. A baked
# checkpoint makes every instance launched from the AMI try to resume that identity and refuse its
# own cluster, so stop the agent first (it would rewrite the file) and then remove its state.
if systemd_running && systemctl is-active --quiet ecs.service; then
  log "stopping ecs.service so it cannot rewrite its checkpoint"
  systemctl stop ecs.service
fi
empty_dir /var/lib/ecs/data
# ecs-boot writes /etc/ecs/ecs.config at every boot; a baked one must not leak the builder's
# settings into the first boot, so leave it empty (ECS-optimized AMIs ship it empty too).
if [ -d /etc/ecs ]; then
  : >/etc/ecs/ecs.config
  chmod 0600 /etc/ecs/ecs.config
  log "emptied /etc/ecs/ecs.config"
fi
empty_dir /var/log/ecs

# 2. ecs-boot's own state: a baked state.json would tell `ecs-boot gate` the boot already happened.
empty_dir /var/lib/ecs-boot

# 3. cloud-init: per-instance state, so that instances run their user data and cloud-init modules.
if command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs --seed
  log "cloud-init clean --logs --seed"
fi
empty_dir /var/lib/cloud
shred_files /var/log/cloud-init.log /var/log/cloud-init-output.log

# 4. Identity: an empty machine-id makes systemd generate a fresh one at first boot (a missing
# file would make it treat /etc as read-only on some versions).
if [ -e /etc/machine-id ]; then
  : >/etc/machine-id
  log "emptied /etc/machine-id"
fi
if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
  rm -f /var/lib/dbus/machine-id
  log "deleted /var/lib/dbus/machine-id"
fi
# The builder's hostname (ip-10-...): instances get theirs from cloud-init and DHCP at boot.
if [ -f /etc/hostname ]; then
  if holds_mount /etc/hostname; then
    : >/etc/hostname
    log "emptied /etc/hostname (a bind mount, not part of an AMI snapshot)"
  else
    rm -f /etc/hostname
    log "deleted /etc/hostname"
  fi
fi
# First-boot stamps and files written for this machine (systemd ConditionNeedsUpdate, postfix,
# cloud-init's locale).
shred_files /etc/.updated /var/.updated /etc/aliases.db /etc/locale.conf \
  /var/lib/misc/postfix.aliasesdb-stamp /var/lib/postfix/master.lock /var/spool/postfix/pid/master.pid

# 5. SSH: host keys are regenerated at first boot; the builder's authorized keys (Packer's
# temporary key) must not let anyone into the fleet.
shred_files /etc/ssh/ssh_host_*key /etc/ssh/ssh_host_*key.pub /root/.ssh/authorized_keys
for home in /home/*; do
  [ -d "$home" ] || continue
  shred_files "$home/.ssh/authorized_keys" "$home/.bash_history"
done
shred_files /root/.bash_history

# 6. Packer's uploads and temporary files. A read-only bind mount (the test instance mounts the RPM
# that way) cannot be deleted, and does not end up in an AMI, so only warn.
for upload in "${ECS_BOOT_RPM:-/tmp/ecs-boot.rpm}" "${ECS_BOOT_CONFIG:-/tmp/ecs-boot-config.toml}"; do
  [ -e "$upload" ] || continue
  if rm -f -- "$upload" 2>/dev/null; then
    log "deleted $upload"
  else
    log "could not delete $upload (read-only mount?); it is not part of an AMI snapshot"
  fi
done
empty_scratch_dir /var/tmp
empty_scratch_dir /tmp

# 7. Package manager caches and history: the builder's installs (our RPM among them) are not the
# instances' history. dnf on Amazon Linux 2023, yum on Amazon Linux 2.
if command -v dnf >/dev/null 2>&1; then
  dnf clean all
elif command -v yum >/dev/null 2>&1; then
  yum clean all
fi
empty_dir /var/cache/dnf
empty_dir /var/cache/yum
empty_dir /var/lib/yum/history
shred_files /var/lib/dnf/history.sqlite /var/lib/dnf/history.sqlite-shm /var/lib/dnf/history.sqlite-wal \
  /var/log/dnf.log /var/log/dnf.librepo.log /var/log/dnf.rpm.log /var/log/hawkey.log /var/log/yum.log

# 8. Logs: the builder's boot must not appear as the first boot of every instance.
if systemd_running && command -v journalctl >/dev/null 2>&1; then
  journalctl --rotate >/dev/null 2>&1 || true
  journalctl --vacuum-time=1s >/dev/null 2>&1 || true
fi
empty_dir /var/log/journal
empty_dir /var/log/amazon/ssm
shred_files /var/log/audit/audit.log /var/log/boot.log /var/log/dmesg /var/log/messages \
  /var/log/cron /var/log/secure /var/log/maillog /var/lib/rsyslog/imjournal.state
for login_record in /var/log/wtmp /var/log/btmp /var/log/lastlog; do
  if [ -f "$login_record" ]; then
    : >"$login_record"
    log "emptied $login_record"
  fi
done
shred_files /var/log/sa/sa*
shred_files /var/lib/dhclient/*.lease /var/lib/dhcp/dhclient.*

log "done"
