"""Drive one simulated instance (tests/sim/boot-instance) from Python: exec, units, journal.

Used by tests/test_sim_instance.py. The instance is a container running systemd as PID 1 on the
host network and the host's Docker engine; everything here goes through `docker` on the host.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from harness import procs

SIM_DIR = Path(__file__).resolve().parent
REPO_ROOT = SIM_DIR.parent.parent
# Ports the instance's fake ECS agent opens on the host's loopback (host network).
AGENT_PORTS = (51678, 51680)
SYSTEM_CONTAINER_LABEL = "ecs-boot-sim=system-container"


def docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


def engine_reachable() -> bool:
    try:
        return docker("info", check=False, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    """The harness's wait, polling more gently: every check here is a `docker exec`."""
    return procs.wait_for(predicate, timeout, interval=interval, what=what)


def write_env_file(path: Path, moto_url: str, imds_url: str, extra: dict | None = None) -> Path:
    """The instance's view of "AWS": emulator endpoints and dummy credentials, as systemd
    EnvironmentFile lines. No AWS_REGION: like on EC2, the region comes from IMDS."""
    values = {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **(extra or {}),
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def remove_system_containers() -> None:
    """ecs-boot starts system containers on the host's engine; they outlive the instance."""
    ids = docker("ps", "-aq", "--filter", f"label={SYSTEM_CONTAINER_LABEL}", check=False)
    for cid in ids.stdout.split():
        docker("rm", "-f", cid, check=False)


class Instance:
    def __init__(self, name: str):
        self.name = name

    @classmethod
    def boot(cls, name: str, env_file: Path, image: str,
             user_data: Path | None = None, shared_dir: Path | None = None) -> "Instance":
        """user_data: a TOML file placed in /etc/ecs-boot/config.d, as cloud-init would;
        shared_dir: a host directory mounted at the same path (see boot-instance)."""
        busy = [p for p in AGENT_PORTS if port_open(p)]
        if busy:
            raise RuntimeError(f"127.0.0.1 ports {busy} are taken: another simulated instance or "
                               "fake ECS agent is running on this host (docker ps --filter "
                               "label=ecs-boot-sim)")
        remove_system_containers()
        env = {**os.environ, **({"USER_DATA_CONFIG": str(user_data)} if user_data else {}),
               **({"SHARED_DIR": str(shared_dir)} if shared_dir else {})}
        subprocess.run([str(SIM_DIR / "boot-instance"), name, str(env_file), image], check=True,
                       capture_output=True, text=True, timeout=60, env=env)
        instance = cls(name)
        wait_for(lambda: instance.sh("systemctl", "is-system-running", check=False).stdout
                 .strip() not in ("", "offline", "initializing"), 30, "systemd to start")
        return instance

    def sh(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        try:
            return docker("exec", self.name, *cmd, check=check, timeout=timeout)
        except subprocess.CalledProcessError as err:
            raise AssertionError(f"`{' '.join(cmd)}` in {self.name} exited {err.returncode}:\n"
                                 f"{err.stdout}{err.stderr}") from None

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.sh("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def active_state(self, unit: str) -> str:
        return self.show(unit, "ActiveState")["ActiveState"]

    def status(self) -> tuple[int, dict | None]:
        """`ecs-boot status --json`: (exit code, document or None)."""
        res = self.sh("ecs-boot", "status", "--json", check=False)
        try:
            return res.returncode, json.loads(res.stdout)
        except ValueError:
            return res.returncode, None

    def outcome(self) -> str | None:
        doc = self.status()[1]
        return ((doc or {}).get("state") or {}).get("outcome")

    def journal(self, *units: str) -> list[dict]:
        args = [a for u in units for a in ("-u", u)]
        out = self.sh("journalctl", "--no-pager", "-o", "json", *args).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def journal_text(self, *units: str, lines: int = 80) -> str:
        args = [a for u in units for a in ("-u", u)]
        return self.sh("journalctl", "--no-pager", "-n", str(lines), *args, check=False).stdout

    def diagnostics(self) -> str:
        return (f"--- ecs-boot status\n{self.sh('ecs-boot', 'status', check=False).stdout}"
                f"--- journal\n{self.journal_text('ecs-boot', 'ecs', 'docker')}")

    def destroy(self) -> None:
        # SIGRTMIN+3: systemd shuts down cleanly (ecs-boot gets SIGTERM like on a real poweroff).
        docker("stop", "--time", "30", self.name, check=False, timeout=60)
        docker("rm", "-f", self.name, check=False)
        remove_system_containers()
