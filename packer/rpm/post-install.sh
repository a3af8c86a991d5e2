# shellcheck shell=sh
# RPM %post of ecs-boot. $1 is the number of ecs-boot packages installed after this transaction:
# 1 on a first install, 2 or more on an upgrade.

# ecs-boot's state directory (state.json). Made here rather than packaged: cargo-generate-rpm cannot
# package an empty directory. install -d also resets the mode of an existing one.
install -d -m 0700 -o root -g root /var/lib/ecs-boot

# Pick up the new or changed unit and ecs.service drop-in. Harmless without a running systemd
# (image builds, chroots, containers): the files are read at the next boot anyway.
systemctl daemon-reload >/dev/null 2>&1 || :

# Enable on first install only, so an upgrade keeps an administrator's `systemctl disable`.
# `systemctl enable` works offline (it only writes the wants/ symlink), so this also holds when the
# RPM is installed into an image without a running systemd. ecs.service is never started here: on
# the ECS-optimized AMI it starts at boot, after ecs-boot has written its configuration (the gate
# drop-in keeps it from starting on an incomplete one).
if [ "$1" -eq 1 ]; then
    systemctl enable ecs-boot.service >/dev/null 2>&1 ||
        echo "ecs-boot: could not enable ecs-boot.service; run: systemctl enable ecs-boot.service" >&2
fi

# Deliberately no `systemctl try-restart ecs-boot.service`, here or in %postun: ecs-boot stays up for
# the instance's lifetime to answer the termination lifecycle hook and drain the instance, and a
# restart in the middle of a drain would drop the drain's progress and its heartbeats, so tasks
# could be killed before ECS moved them. An upgraded binary takes over at the next boot; fleets get
# new versions by rolling a new AMI out (instance refresh), not by upgrading in place.
exit 0
