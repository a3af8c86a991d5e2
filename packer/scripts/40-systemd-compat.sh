#!/usr/bin/env bash
# Amazon Linux 2 runs systemd 219, older than several directives of ecs-boot.service (written for
# the systemd 252 of Amazon Linux 2023). systemd ignores a directive it does not know, with an
# "Unknown lvalue" warning, so on AL2 the unit would silently lose its start limit, most of its
# sandbox and, worst, RuntimeDirectoryPreserve=yes: /run/ecs-boot, which holds the per-boot
# "ecs.config is complete" marker that `ecs-boot gate` checks, would vanish at every restart of
# ecs-boot. On a systemd older than 235 this writes the older spellings as a drop-in; on a newer
# one it writes nothing (and removes a drop-in an older image left).
set -euo pipefail

dropin=/etc/systemd/system/ecs-boot.service.d/10-systemd-before-235.conf
tmpfiles=/etc/tmpfiles.d/ecs-boot.conf

version="$(systemctl --version | awk 'NR == 1 { print $2 }')"
if ! [[ "$version" =~ ^[0-9]+$ ]]; then
  echo "40-systemd-compat: cannot read the systemd version from: $(systemctl --version | head -n1)" >&2
  exit 1
fi

if [ "$version" -ge 235 ]; then
  rm -f "$dropin" "$tmpfiles"
  echo "40-systemd-compat: systemd $version knows every directive of ecs-boot.service"
  exit 0
fi

install -d -m 0755 "$(dirname "$dropin")" "$(dirname "$tmpfiles")"
cat >"$dropin.tmp" <<DROPIN
# Written by packer/scripts/40-systemd-compat.sh for systemd $version (< 235).
[Service]
# StartLimitIntervalSec= in [Unit] is systemd 230+; before, the start limit lives in [Service].
StartLimitInterval=600
StartLimitBurst=5
# ProtectSystem=strict (232+) and ReadWritePaths= (231+): the closest older settings. /etc is
# read-only but for ecs.config's directory; /var/lib/ecs-boot and /run stay writable.
ProtectSystem=full
ReadWriteDirectories=/etc/ecs
# RuntimeDirectoryPreserve= is 235+. Without it systemd would remove /run/ecs-boot whenever the
# unit stops, so systemd does not manage it here: tmpfiles makes it at boot ($tmpfiles) and
# nothing removes it before the next boot.
RuntimeDirectory=
DROPIN
chmod 0644 "$dropin.tmp"
mv -f "$dropin.tmp" "$dropin"

printf '%s\n' "# Written by packer/scripts/40-systemd-compat.sh: ecs-boot's runtime directory (see $dropin)." \
  "d /run/ecs-boot 0755 root root -" >"$tmpfiles.tmp"
chmod 0644 "$tmpfiles.tmp"
mv -f "$tmpfiles.tmp" "$tmpfiles"
echo "40-systemd-compat: systemd $version: wrote $dropin and $tmpfiles"
