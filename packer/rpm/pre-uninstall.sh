# shellcheck shell=sh
# RPM %preun of ecs-boot. $1 is the number of ecs-boot packages left after this transaction: 0 when
# the package is being removed, 1 or more during an upgrade (then nothing is to be done).

# On removal, disable the unit but do not stop it: stopping ecs-boot mid-drain would abandon the
# drain (see post-install.sh). It is gone after the next boot.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable ecs-boot.service >/dev/null 2>&1 || :
fi
exit 0
