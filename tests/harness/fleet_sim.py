"""Simulated instance roots for `ecs-boot fleet status`: a state file in the schema of
src/status/state.rs (and the ecs.config it records) under `ROOT/var/lib/ecs-boot/`, plus one cheap
process that passes status's "is the daemon running" test.

`status` calls the daemon running when /proc/<pid>/cmdline contains `ecs-boot` and an argument
`run`; `Daemon` is a sleeping Python whose argv ends in `ecs-boot run`, and every simulated
instance that should look alive records its pid. A dead daemon records a pid that cannot exist.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from . import ssm_ext
from .procs import link_host

# Above any pid_max Linux allows (2^22): never a live process.
DEAD_PID = 4_194_305
KINDS = ("healthy", "failed", "in_progress", "dead_mid_boot", "no_state")


class Daemon:
    """A stand-in `ecs-boot run` process, shared by every live simulated instance."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(3600)", "ecs-boot", "run"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _ts(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _phase(name: str, status: str, start: datetime.datetime, ms: int | None = 120,
           error: str | None = None, hint: str | None = None) -> dict:
    p = {"name": name, "status": status, "started_at": _ts(start)}
    if ms is not None and status != "running":
        p["ended_at"] = _ts(start + datetime.timedelta(milliseconds=ms))
        p["duration_ms"] = ms
    if error:
        p["error"], p["hint"] = error, hint
    return p


BOOT_PHASES = ["identity", "tags", "credentials", "ecs-config-render", "ecs-config-write",
               "containers", "registration", "launch-hook"]


def write_state(root, instance_id: str, kind: str, daemon_pid: int = DEAD_PID,
                failing_phase: str = "tags", message: str = "required tags still missing",
                hint: str = "tag the ASG with propagate_at_launch", running_phase: str =
                "registration", extra: dict | None = None) -> Path:
    """Writes ROOT/var/lib/ecs-boot/state.json for one kind of instance (see KINDS) and returns
    the root. `no_state` writes nothing. `extra` is merged into the state (e.g. warnings)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    link_host(root)  # `status` finds the live daemon's pid in the root's /proc
    if kind == "no_state":
        return root
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(minutes=5)
    state = {"schema": 1, "version": "0.1.0", "commit": "sim", "pid": daemon_pid,
             "started_at": _ts(start), "updated_at": _ts(now),
             "instance": {"instance_id": instance_id, "region": "us-east-1",
                          "availability_zone": "us-east-1a", "instance_type": "m6i.large"}}
    if kind == "healthy":
        ecs_config = root / "etc/ecs/ecs.config"
        ecs_config.parent.mkdir(parents=True, exist_ok=True)
        text = b"ECS_CLUSTER=fleet\n"
        ecs_config.write_bytes(text)
        state.update(outcome="in_service",
                     phases=[_phase(n, "ok", start) for n in BOOT_PHASES],
                     ecs_config={"path": "/etc/ecs/ecs.config",
                                 "sha256": hashlib.sha256(text).hexdigest(),
                                 "cluster": "fleet", "keys": ["ECS_CLUSTER"]})
    elif kind == "failed":
        done = BOOT_PHASES[:BOOT_PHASES.index(failing_phase)]
        state.update(outcome="failed",
                     phases=[_phase(n, "ok", start) for n in done]
                     + [_phase(failing_phase, "failed", start, 30_000, message, hint)],
                     error={"phase": failing_phase, "message": message, "hint": hint})
    elif kind in ("in_progress", "dead_mid_boot"):
        done = BOOT_PHASES[:BOOT_PHASES.index(running_phase)]
        state.update(outcome="booting",
                     phases=[_phase(n, "ok", start) for n in done]
                     + [_phase(running_phase, "running", start, None)])
    else:
        raise ValueError(f"unknown kind {kind!r}")
    state.update(extra or {})
    path = root / "var/lib/ecs-boot/state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    return root


def simulate(base, plan: dict[str, dict], daemon: Daemon, binary=None) -> None:
    """Roots under `base` and SSM registrations for `plan`: instance id -> {"kind", "online"
    (default True), "ssm" (default True: registered), "delay", "vanishing", state options...}.
    `binary` is the ecs-boot the commands run (default $ECS_BOOT_BIN, else
    target/debug/ecs-boot)."""
    for iid, spec in plan.items():
        spec = dict(spec)
        kind = spec.pop("kind")
        online = spec.pop("online", True)
        managed = spec.pop("ssm", True)
        delay = spec.pop("delay", 0.0)
        vanishing = spec.pop("vanishing", False)
        pid = daemon.pid if kind in ("healthy", "in_progress") else DEAD_PID
        root = write_state(Path(base) / iid, iid, kind, daemon_pid=pid, **spec)
        if managed:
            ssm_ext.register(iid, root, online=online, delay=delay, vanishing=vanishing,
                             binary=str(binary) if binary else None)
