# shellcheck shell=sh
# RPM %postun of ecs-boot. $1 is the number of ecs-boot packages left after this transaction.

# Forget the removed unit files and drop-in (or load the upgraded ones). No try-restart: see
# post-install.sh for why an upgrade must not restart ecs-boot.
systemctl daemon-reload >/dev/null 2>&1 || :
exit 0
