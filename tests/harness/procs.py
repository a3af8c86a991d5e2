"""Handles for the processes tests start: the fake ECS agent and the real ecs-boot binary.

Both write their output to files rather than pipes: a long-running process that logs more than a
pipe buffer would otherwise block while a test waits on it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

AGENT_SCRIPT = Path(__file__).resolve().parent / "fake_ecs_agent.py"


# Ports handed out by this process. The kernel knows nothing of a port chosen but not yet bound
# (the fake agent opens its introspection port only when it "registers"), so without this, a
# storm's 400 draws from ~28,000 ephemeral ports collide almost surely (the birthday bound).
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """A loopback port free now and never handed out before by this process."""
    with _handed_out_lock:
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy; return its value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def http_json(method: str, url: str, body=None, timeout: float = 5.0):
    """(status, parsed JSON or None). Raises OSError (e.g. connection refused) as is."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    return status, (json.loads(raw) if raw.strip() else None)


class FakeAgent:
    """One fake_ecs_agent.py subprocess on free loopback ports."""

    def __init__(self, env: dict, args: list[str], log_path: Path, port: int | None = None):
        # The caller may pick the introspection port first: ecs-boot's config must name it.
        self.port, self.admin_port = port or free_port(), free_port()
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(AGENT_SCRIPT), "--port", str(self.port),
                 "--admin-port", str(self.admin_port), *args],
                env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/_admin"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def introspection_open(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def wait_exit(self, timeout: float = 10) -> int:
        return self.proc.wait(timeout)

    def wait_admin(self, timeout: float = 10) -> None:
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"fake agent exited {self.proc.returncode}:\n{self.output()}")
            try:
                return http_json("GET", self.admin_url + "/state")[0] == 200
            except OSError:
                return False
        wait_for(up, timeout, what="fake agent admin API")

    def wait_registered(self, timeout: float = 15) -> dict:
        """Wait for /v1/metadata to answer with a ContainerInstanceArn; return the metadata."""
        def registered():
            if self.proc.poll() is not None:
                raise RuntimeError(f"fake agent exited {self.proc.returncode}:\n{self.output()}")
            try:
                status, body = self.metadata()
            except OSError:
                return None
            return body if status == 200 and body.get("ContainerInstanceArn") else None
        return wait_for(registered, timeout, what="fake agent registration")

    def metadata(self):
        return http_json("GET", self.introspection_url + "/v1/metadata")

    def tasks(self) -> list[dict]:
        return http_json("GET", self.introspection_url + "/v1/tasks")[1]["Tasks"]

    def state(self) -> dict:
        return http_json("GET", self.admin_url + "/state")[1]

    def add_tasks(self, family: str = "app", kind: str = "service", count: int = 1) -> list[str]:
        status, body = http_json("POST", self.admin_url + "/tasks",
                                 {"family": family, "kind": kind, "count": count}, timeout=15)
        if status != 200:
            raise RuntimeError(f"add_tasks failed: {status} {body}")
        return body["tasks"]

    def set_oversize_tasks(self, nbytes: int) -> None:
        """/v1/tasks answers about `nbytes` more, as made-up RUNNING tasks (0: off)."""
        http_json("POST", self.admin_url + "/oversize", {"bytes": nbytes})

    def set_introspection(self, enabled: bool) -> None:
        http_json("POST", self.admin_url + "/introspection", {"enabled": enabled})

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class Wrapped:
    """A process started under a wrapper (strace): `pid` and signals are the wrapped child's,
    exit status the wrapper's (strace exits as its tracee did)."""

    def __init__(self, outer: subprocess.Popen, program: str):
        self.outer, self.program = outer, program
        self.pid = wait_for(lambda: self._child() or (outer.poll() is not None and -1),
                            timeout=10, interval=0.002, what="the wrapped process")

    def _child(self) -> int | None:
        """The child running `program` (strace forks probes of its own first)."""
        try:
            kids = Path(f"/proc/{self.outer.pid}/task/{self.outer.pid}/children").read_text()
        except OSError:
            return None
        for kid in kids.split():
            try:
                argv0 = Path(f"/proc/{kid}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                continue
            if argv0 == self.program:
                return int(kid)
        return None

    @property
    def returncode(self):
        return self.outer.returncode

    def poll(self):
        return self.outer.poll()

    def wait(self, timeout=None):
        return self.outer.wait(timeout)

    def send_signal(self, sig) -> None:
        if self.pid > 0 and self.outer.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(9)
        self.outer.kill()


def link_host(root: Path) -> None:
    """A test root is a host whose files are scratch but whose processes and Docker engine are
    this machine's: ecs-boot reads procfs and the engine's socket under --root like every other
    host path, so the root's /proc and /var/run/docker.sock point at the real ones (the simulated
    instance bind-mounts them instead)."""
    for rel, target in (("proc", "/proc"), ("var/run/docker.sock", "/var/run/docker.sock")):
        link = Path(root) / rel
        if not link.is_symlink() and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)


class EcsBoot:
    """Runs the real ecs-boot binary with --root in a temp dir and a minimal environment."""

    def __init__(self, binary: Path, workdir: Path, env: dict, host_args: bool = True):
        """host_args=False for the operator's `ecs-boot-fleet`, which reads no host paths."""
        self.binary = binary
        self.host_args = host_args
        self.workdir = workdir
        self.root = workdir / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        if host_args:
            link_host(self.root)
        self.env = env
        self.config_path: Path | None = None
        self._spawned: list[subprocess.Popen] = []
        # Worlds whose locations the trusted config.d drop-in opens to tags (the harness plays
        # the administrator's user data); a test about the allowlist itself sets this to None.
        self.trusted_worlds: list | None = []
        # More [trust] prefixes for tests that store objects outside a world's locations.
        self.extra_trust: dict[str, list[str]] = {}

    @property
    def ecs_config(self) -> Path:
        return self.root / "etc/ecs/ecs.config"

    @property
    def state_file(self) -> Path:
        return self.root / "var/lib/ecs-boot/state.json"

    def write_config(self, toml_text: str) -> Path:
        """Write a config file and pass it as --config from now on (else the baked path under
        --root is used, i.e. root/etc/ecs-boot/config.toml)."""
        self.config_path = self.workdir / "config.toml"
        self.config_path.write_text(toml_text)
        return self.config_path

    @property
    def config_d(self) -> Path:
        """config.d beside the config file in use: --config's, else the baked path's."""
        base = self.config_path.parent if self.config_path else self.root / "etc/ecs-boot"
        return base / "config.d"

    def _write_trust(self) -> None:
        from harness.world import trust_dropin
        path = self.config_d / "05-harness-trust.toml"
        if self.trusted_worlds is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(trust_dropin(self.trusted_worlds, self.extra_trust))

    def argv(self, *args: str) -> list[str]:
        if self.host_args:
            self._write_trust()
        argv = [str(self.binary)]
        if self.host_args:
            argv += ["--root", str(self.root)]
        if self.host_args and self.config_path:
            argv += ["--config", str(self.config_path)]
        return argv + [str(a) for a in args]

    def _env(self, extra: dict | None) -> dict:
        env = dict(self.env)
        for key, value in (extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
        return env

    def run(self, *args: str, timeout: float = 60, env: dict | None = None,
            ) -> subprocess.CompletedProcess:
        """Run to completion; env entries override (None removes). Output captured as text."""
        return subprocess.run(self.argv(*args), env=self._env(env), capture_output=True,
                              text=True, timeout=timeout)

    def spawn(self, *args: str, env: dict | None = None, wrap: list[str] | None = None):
        """Start in the background (killed at teardown). Output goes to proc.log_path.
        `wrap` runs it under another program (e.g. strace): the handle's pid and signals are
        then ecs-boot's own (`Wrapped`)."""
        log_path = self.workdir / f"ecs-boot-{len(self._spawned)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([*(wrap or []), *self.argv(*args)], env=self._env(env),
                                    stdout=log, stderr=subprocess.STDOUT)
        if wrap:
            proc = Wrapped(proc, str(self.binary))
        proc.log_path = log_path
        self._spawned.append(proc)
        return proc

    def close(self) -> None:
        for proc in self._spawned:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def base_env(moto_url: str, imds_url: str, home: Path) -> dict:
    """The only environment the processes under test get (plus RUST_LOG if the caller set it)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # empty home: no ~/.aws config can leak into a test
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    if os.environ.get("RUST_LOG"):
        env["RUST_LOG"] = os.environ["RUST_LOG"]
    return env
