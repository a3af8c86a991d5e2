"""Issue 10, the fault matrix: every fault ends in a converged state or a clean ABANDON with its
cause, and nothing is ever half written.

One row per fault and phase (`FAULTS`). Each row runs the real binary (`ecs-boot run`) against
moto, the fake IMDS and the fake ECS agent, injects its fault, and is judged twice:

* its outcome: `in_service` / `terminated: RESULT` (converged despite the fault), `ABANDON:
  <cause>` (the launch hook ABANDONed by ecs-boot with the cause), or `failed, hook left to
  DefaultResult: <cause>` / `ABANDON by timeout: <cause>` (ecs-boot could not reach the hook: it
  fails with the cause and the hook's own timeout decides);
* the invariants every row must keep: state.json parses, ecs.config is absent, the old file
  byte for byte, or a complete render (its block closed by `# END ecs-boot`), at most one accepted
  completion per lifecycle transition, no temp file left by a clean failure. A row breaking the
  first two counts as "state lost".

At the end of the session the table and the summary line (`faults: N tried, N passed, state
lost = 0`) are printed and written to .cache/faults-latest.md (see faults_plugin.py).

Every run has an old ecs.config on disk first (a reboot of an instance that ran before, with a
line of its own from user data), so "old content intact" is checked on every failure before the
write. Runs that configure no system container get DOCKER_HOST pointing at nothing, so they never
touch the Docker engine's containers.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

import faults_plugin
from harness.procs import free_port, wait_for

pytest_plugins = ["faults_plugin"]

BEGIN = "# BEGIN ecs-boot:"
END = "# END ecs-boot"
# The previous boot's file: a line user data added, and ecs-boot's block from then.
OLD_CONFIG = (b"ECS_LOGFILE=/log/ecs-agent.log\n"
              b"# BEGIN ecs-boot: this block is rewritten at every boot; change tags or "
              b"/etc/ecs-boot/config.toml instead\nECS_CLUSTER=old-cluster\n# END ecs-boot\n")
NO_DOCKER = "unix:///nonexistent/ecs-boot-faults/docker.sock"
IDENTITY = "/latest/dynamic/instance-identity"
TAGS = "/latest/meta-data/tags"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
MANAGED_LABEL = "io.ecs-boot.managed=true"
IMAGE = "127.0.0.1:1/ecs-boot-faults/busybox:1"


class NotCovered(Exception):
    """The row cannot run here; the reason goes into the table."""


# --- config -----------------------------------------------------------------------------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(v)


def render_toml(sections: dict, containers: list[dict]) -> str:
    out = []
    for name, values in sections.items():
        out.append(f"[{name}]")
        out += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    for c in containers:
        out.append("[[container]]")
        out += [f"{k} = {_toml_value(v)}" for k, v in c.items()]
    return "\n".join(out) + "\n"


# --- one row's context ------------------------------------------------------------------------

class Ctx:
    def __init__(self, moto, imds, ecs_boot, fake_agent, world, tmp_path):
        self.moto, self.imds, self.ecs_boot, self.fake_agent = moto, imds, ecs_boot, fake_agent
        self.world, self.tmp_path = world, tmp_path
        self.port = free_port()
        self.sections = {
            "ecs_agent": {"introspection_url": f"http://127.0.0.1:{self.port}",
                          "registration_timeout": "10s"},
            "tags": {"wait": "3s"},
            "imds": {"timeout": "3s"},
            "docker": {"engine_wait": "200ms"},
            "drain": {"poll_interval": "200ms"},
        }
        self.containers: list[dict] = []
        self.env = {"DOCKER_HOST": NO_DOCKER}
        self.agent = None
        self.proc = None
        self.got: str | None = None          # a row may describe its outcome itself
        self.crash = False                    # SIGKILLed runs may leave temp files behind
        self.old = OLD_CONFIG
        self.cleanups: list[Callable] = []

    # config and processes
    def configure(self, **sections) -> None:
        for name, values in sections.items():
            self.sections.setdefault(name, {}).update(values)

    def write_config(self) -> None:
        self.ecs_boot.write_config(render_toml(self.sections, self.containers))

    def prewrite_old(self) -> None:
        path = self.ecs_boot.ecs_config
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.old)
        path.chmod(0o600)

    def spawn(self):
        self.proc = self.ecs_boot.spawn("run", env=self.env)
        return self.proc

    def state(self) -> dict | None:
        try:
            return json.loads(self.ecs_boot.state_file.read_text())
        except (OSError, ValueError):
            return None

    def own_state(self, proc) -> dict | None:
        s = self.state()
        return s if s and s.get("pid") == proc.pid else None

    def phase(self, proc, name: str) -> str | None:
        for p in reversed((self.own_state(proc) or {}).get("phases", [])):
            if p["name"] == name:
                return p["status"]
        return None

    def wait_written(self, proc, timeout: float = 25) -> bool:
        """True once this run recorded ecs-config-write ok; False if it exited first."""
        return wait_for(lambda: "written" if self.phase(proc, "ecs-config-write") == "ok"
                        else "exited" if proc.poll() is not None else None,
                        timeout=timeout, what="ecs-config-write or exit") == "written"

    def start_agent(self, **opts):
        self.agent = self.fake_agent(self.ecs_boot.ecs_config, port=self.port, **opts)
        return self.agent

    def boot(self, agent: bool = True, **agent_opts):
        """Old ecs.config on disk, `run`, and (as ecs.service would, once ecs-boot wrote the
        file) the fake agent."""
        self.prewrite_old()
        self.write_config()
        proc = self.spawn()
        if self.wait_written(proc) and agent:
            self.start_agent(**agent_opts)
        return proc

    def settle(self, proc, timeout: float = 40, outcomes=("in_service", "warmed", "terminated")):
        """Until this run exits or reaches one of `outcomes`."""
        def done():
            if proc.poll() is not None:
                return True
            s = self.own_state(proc)
            return bool(s and s.get("outcome") in outcomes)
        wait_for(done, timeout=timeout, interval=0.05, what=f"run to settle ({outcomes})")
        return self.state()

    def kill_when(self, proc, predicate, timeout: float = 30) -> None:
        """SIGKILL the run the moment `predicate(state)` holds (state of this run only)."""
        def hit():
            if proc.poll() is not None:
                raise AssertionError(f"run exited {proc.returncode} before the kill point:\n"
                                     + Path(proc.log_path).read_text(errors="replace")[-2000:])
            s = self.own_state(proc)
            return bool(s and predicate(s))
        wait_for(hit, timeout=timeout, interval=0.002, what="kill point")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        self.crash = True

    # AWS side
    def aws_fault(self, **rule) -> None:
        self.moto._admin("POST", "/faults", rule)

    def completions(self, transition=LAUNCHING) -> list[dict]:
        return [c for c in self.moto.completions()
                if c["instance"] == self.world.instance_id and c["transition"] == transition]

    def client_calls(self, action: str) -> list[dict]:
        return [c for c in self.moto.calls(source="client") if c["action"] == action]

    def scale_in(self) -> None:
        self.moto.client("autoscaling").terminate_instance_in_auto_scaling_group(
            InstanceId=self.world.instance_id, ShouldDecrementDesiredCapacity=True)

    def s3_location(self) -> tuple[str, str]:
        return self.world.registry_auth[len("s3://"):].split("/", 1)

    def log(self) -> str:
        return "".join(Path(p.log_path).read_text(errors="replace")
                       for p in self.ecs_boot._spawned)


def phase_of(state: dict, name: str) -> dict | None:
    for p in reversed((state or {}).get("phases", [])):
        if p["name"] == name:
            return p
    return None


def hook_of(state: dict, transition: str) -> dict | None:
    return next((h for h in (state or {}).get("hooks", []) if h["transition"] == transition), None)


# --- judging ----------------------------------------------------------------------------------

def ecs_config_kind(ctx: Ctx) -> str:
    """absent, old, complete or partial."""
    path = ctx.ecs_boot.ecs_config
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "absent"
    if data == ctx.old:
        return "old"
    text = data.decode(errors="replace")
    lines = text.splitlines()
    begins = [i for i, line in enumerate(lines) if line.startswith(BEGIN)]
    if (text.endswith(END + "\n") and len(begins) == 1 and lines[-1] == END
            and all("=" in line for line in lines[begins[0] + 1:-1])):
        return "complete"
    return "partial"


def describe_outcome(ctx: Ctx) -> str:
    s = ctx.state() or {}
    outcome = s.get("outcome")
    error = (s.get("error") or {}).get("message", "")
    if outcome == "in_service":
        h = hook_of(s, "launch")
        return "in_service" + (" (hook already ended)" if h and h.get("already_done") else "")
    if outcome == "terminated":
        h = hook_of(s, "terminate") or {}
        return f"terminated: {h.get('result')}" + (f" ({h['cause']})" if h.get("cause") else "")
    if outcome == "failed":
        h = hook_of(s, "launch")
        if h and h["result"] == "ABANDON":
            return f"ABANDON: {h.get('cause')}"
        done = ctx.completions()
        if done:
            return f"{done[0]['result']} by {done[0]['source']}: {error}"
        return f"failed, hook left to DefaultResult: {error}"
    return f"{outcome or 'no state'}: {error}"


def matches(expected: str, got: str) -> bool:
    head, _, needle = expected.partition(": ")
    return got.startswith(head) and needle in got


@dataclass
class Fault:
    name: str
    phase: str
    expected: str
    run: Callable[[Ctx], list]
    world: dict = field(default_factory=dict)
    before_write: bool = False   # fails before ecs.config is written: the old file must stay


def judge(ctx: Ctx, fault: Fault, problems: list[str]) -> tuple[str, bool, bool]:
    got = (ctx.got or describe_outcome(ctx)).replace(str(ctx.ecs_boot.root), "<root>")
    state_lost = False
    if ctx.state() is None:
        state_lost = True
        problems.append("state.json missing or unparsable")
    kind = ecs_config_kind(ctx)
    if kind == "partial":
        state_lost = True
        problems.append("ecs.config is partial")
    if fault.before_write and kind != "old":
        problems.append(f"ecs.config should be the old file, is {kind}")
    if got.startswith(("in_service", "terminated")) and kind != "complete":
        problems.append(f"converged but ecs.config is {kind}")
    for transition in (LAUNCHING, TERMINATING):
        n = len(ctx.completions(transition))
        if n > 1:
            problems.append(f"{n} completions of {transition}")
    if got.startswith("ABANDON: ") and [c["result"] for c in ctx.completions()] != ["ABANDON"]:
        problems.append(f"launch completions {ctx.completions()}")
    if not ctx.crash:
        temps = [p.name for p in ctx.ecs_boot.ecs_config.parent.glob(".ecs.config.tmp.*")]
        if temps:
            problems.append(f"temp files left: {temps}")
    if not matches(fault.expected, got):
        problems.append(f"expected {fault.expected!r}, got {got!r}")
    return got, not problems, state_lost


# --- rows: IMDS -------------------------------------------------------------------------------

def imds_500_then_ok(ctx):
    ctx.imds.reset_log()
    ctx.imds.fail_next(2, status=500, path_prefix=IDENTITY)
    ctx.configure(imds={"timeout": "10s"})
    ctx.settle(ctx.boot())
    hits = [r["status"] for r in ctx.imds.requests if r["path"].startswith(IDENTITY)]
    return [] if hits[:3] == [500, 500, 200] else [f"identity reads {hits}"]


def imds_500_forever(ctx):
    ctx.imds.fail_next(10_000, status=500, path_prefix=IDENTITY)
    proc = ctx.boot()
    ctx.settle(proc)
    problems = [] if proc.wait(10) == 1 else [f"exit {proc.returncode}"]
    warnings = " ".join((ctx.state() or {}).get("warnings", []))
    if "DefaultResult" not in warnings:
        problems.append(f"no warning about the hook's DefaultResult: {warnings!r}")
    return problems


def imds_slower_than_timeout(ctx):
    ctx.imds.set_delay(4.0, path_prefix=TAGS)
    ctx.configure(imds={"timeout": "2s"})
    ctx.settle(ctx.boot())
    return []


def imds_slow_within_timeout(ctx):
    ctx.imds.set_delay(1.2, path_prefix=IDENTITY)
    ctx.settle(ctx.boot())
    p = phase_of(ctx.state(), "identity")
    return [] if p and p["duration_ms"] >= 1200 else [f"identity phase {p}"]


def imds_token_rejected_at_boot(ctx):
    ctx.imds.reset_log()
    # Tags appear late, so run keeps reading IMDS; meanwhile every token is revoked.
    ctx.imds.set_tags(dict(ctx.imds.tags), visible_after=1.5)
    timer = threading.Timer(0.6, ctx.imds.invalidate_tokens)
    timer.start()
    try:
        ctx.configure(tags={"wait": "6s"})
        ctx.settle(ctx.boot())
    finally:
        timer.cancel()
    statuses = [r["status"] for r in ctx.imds.requests]
    problems = [] if 401 in statuses else ["no 401 seen"]
    if ctx.imds.token_puts < 2:
        problems.append(f"{ctx.imds.token_puts} token PUTs")
    return problems


def imds_token_rejected_in_service(ctx):
    ctx.configure(drain={"deadline": "10s"})
    proc = ctx.boot(stop_delay=0.3)
    ctx.settle(proc)
    ctx.imds.reset_log()
    ctx.imds.invalidate_tokens()
    time.sleep(0.5)  # a watch poll meets the 401
    ctx.scale_in()
    ctx.settle(proc, outcomes=("terminated",))
    statuses = [r["status"] for r in ctx.imds.requests]
    return [] if 401 in statuses and ctx.imds.token_puts >= 1 else [f"IMDS log {statuses}"]


def imds_tags_disabled(ctx):
    ctx.imds.set_tags_enabled(False)
    ctx.configure(tags={"wait": "1s"})
    ctx.settle(ctx.boot())
    return []


# --- rows: S3 / SSM ---------------------------------------------------------------------------

def s3_access_denied(ctx):
    ctx.aws_fault(service="s3", action="GetObject", status=403, code="AccessDenied",
                  message="Access Denied")
    ctx.settle(ctx.boot())
    return []


def s3_no_such_key(ctx):
    bucket, key = ctx.s3_location()
    ctx.moto.client("s3").delete_object(Bucket=bucket, Key=key)
    ctx.settle(ctx.boot())
    return []


def s3_500_then_ok(ctx):
    ctx.aws_fault(service="s3", action="GetObject", status=500, code="InternalError",
                  message="We encountered an internal error. Please try again.", count=2)
    ctx.settle(ctx.boot())
    n = [c["status"] for c in ctx.client_calls("GetObject")]
    return [] if n == [500, 500, 200] else [f"GetObject statuses {n}"]


def s3_slow(ctx):
    ctx.aws_fault(service="s3", action="GetObject", delay=2.0)
    ctx.settle(ctx.boot())
    p = phase_of(ctx.state(), "credentials")
    return [] if p and p["duration_ms"] >= 2000 else [f"credentials phase {p}"]


def s3_malformed_json(ctx):
    bucket, key = ctx.s3_location()
    ctx.moto.client("s3").put_object(Bucket=bucket, Key=key, Body=b'{"auths": {"x": ')
    ctx.settle(ctx.boot())
    return []


def s3_too_large(ctx):
    bucket, key = ctx.s3_location()
    body = b'{"auths": {}, "pad": "' + b"x" * (64 * 1024) + b'"}'
    ctx.moto.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    ctx.settle(ctx.boot())
    return []


def ssm_access_denied(ctx):
    ctx.aws_fault(service="ssm", action="GetParameter", status=400,
                  code="AccessDeniedException",
                  message="User is not authorized to perform: ssm:GetParameter")
    ctx.settle(ctx.boot())
    return []


def ssm_not_secure(ctx):
    name = ctx.world.registry_auth[len("ssm:"):]
    ssm = ctx.moto.client("ssm")
    value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    ssm.delete_parameter(Name=name)
    ssm.put_parameter(Name=name, Value=value, Type="String")
    ctx.settle(ctx.boot())
    return []


# --- rows: Docker -----------------------------------------------------------------------------

def essential(name: str, image: str, pull: str = "never", **extra) -> dict:
    return {"name": name, "image": image, "essential": True, "pull": pull,
            "command": ["/bin/busybox", "sleep", "3600"], "min_uptime": "1s", **extra}


def docker_cli(*args, check=False, timeout=60):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


def require_engine_to_ourselves() -> None:
    """`ecs-boot run` reconciles the default label scope (there is no scope flag on `run`): it
    would remove a simulated instance's system containers on the same engine."""
    if not shutil.which("docker"):
        raise NotCovered("no docker CLI on this machine")
    out = docker_cli("ps", "-a", "-q", "--filter", f"label={MANAGED_LABEL}", timeout=20)
    if out.returncode != 0:
        raise NotCovered(f"no Docker engine: {out.stderr.strip()[:120]}")
    if out.stdout.strip():
        raise NotCovered("the engine holds other ecs-boot containers (a simulated instance?); "
                         "`run` would reconcile them away")


def docker_engine_down(ctx):
    ctx.containers = [essential("faults-metrics", "127.0.0.1:1/ecs-boot-faults/none:1")]
    ctx.configure(docker={"engine_wait": "1s"})
    ctx.settle(ctx.boot())
    return []


def docker_pull_failing(ctx):
    require_engine_to_ourselves()
    name = f"faults-{uuid.uuid4().hex[:8]}"
    ctx.cleanups.append(lambda: docker_cli("rm", "-f", name))
    ctx.env = {"DOCKER_HOST": None}
    ctx.containers = [essential(name, "127.0.0.1:1/ecs-boot-faults/missing:1",
                                pull="if-not-present")]
    ctx.configure(docker={"engine_wait": "5s"})
    ctx.settle(ctx.boot())
    return []


class SocketProxy:
    """A unix-socket proxy to the Docker engine that can vanish mid-run (the engine 'gone')."""

    def __init__(self, path: Path, target: str = "/var/run/docker.sock"):
        self.path, self.target = path, target
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(16)
        self.conns: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.server.close()
        self.path.unlink(missing_ok=True)
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


def ensure_image() -> None:
    if docker_cli("image", "inspect", IMAGE, timeout=20).returncode == 0:
        return
    busybox = shutil.which("busybox") or "/bin/busybox"
    kind = subprocess.run(["file", "-L", busybox], capture_output=True, text=True).stdout
    if not Path(busybox).is_file() or "statically linked" not in kind:
        raise NotCovered("needs a static busybox for the test image (apt-get install "
                         "busybox-static)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        shutil.copy(busybox, root / "bin/busybox")
        tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True,
                             check=True).stdout
        subprocess.run(["docker", "import", "-", IMAGE], input=tar, capture_output=True,
                       check=True, timeout=60)


def docker_engine_gone(ctx):
    require_engine_to_ourselves()
    ensure_image()
    name = f"faults-{uuid.uuid4().hex[:8]}"
    ctx.cleanups.append(lambda: docker_cli("rm", "-f", name))
    sock = Path(tempfile.mkdtemp(prefix="ecs-boot-faults-")) / "docker.sock"
    proxy = SocketProxy(sock)
    ctx.cleanups.append(proxy.close)
    ctx.env = {"DOCKER_HOST": f"unix://{sock}"}
    # The container must stay up 4 s to count; the engine goes away 1 s after it started.
    ctx.containers = [essential(name, IMAGE, min_uptime="4s")]
    ctx.configure(docker={"engine_wait": "2s"})
    proc = ctx.boot()

    def running():
        out = docker_cli("ps", "-q", "--filter", f"name=^{name}$", timeout=20)
        return out.stdout.strip() or (proc.poll() is not None and "exited")
    wait_for(running, timeout=20, what="system container running")
    time.sleep(1.0)
    proxy.close()
    ctx.settle(proc)
    return []


# --- rows: ECS agent --------------------------------------------------------------------------

def agent_never_registers(ctx):
    ctx.configure(ecs_agent={"registration_timeout": "3s"})
    ctx.settle(ctx.boot(never_register=True))
    return []


def agent_other_cluster(ctx):
    ctx.moto.client("ecs").create_cluster(clusterName="someone-elses")
    ctx.settle(ctx.boot(cluster_override="someone-elses"))
    return []


def agent_dies_after_registering(ctx):
    ctx.configure(drain={"deadline": "15s"})
    proc = ctx.boot(stop_delay=0.5)
    ctx.settle(proc)
    ctx.agent.add_tasks("web", kind="service", count=1)
    ctx.agent.set_introspection(False)
    ctx.scale_in()
    s = ctx.settle(proc, outcomes=("terminated",))
    drain = s.get("drain") or {}
    return [] if drain.get("state") == "drained" else [f"drain {drain}"]


# --- rows: Auto Scaling -----------------------------------------------------------------------

def asg_throttled_then_ok(ctx):
    ctx.aws_fault(service="autoscaling", action="CompleteLifecycleAction", status=400,
                  code="Throttling", message="Rate exceeded", count=2)
    ctx.settle(ctx.boot())
    statuses = [c["status"] for c in ctx.client_calls("CompleteLifecycleAction")]
    return [] if statuses == [400, 400, 200] else [f"CompleteLifecycleAction {statuses}"]


def asg_throttled_forever(ctx):
    ctx.aws_fault(service="autoscaling", action="CompleteLifecycleAction", status=400,
                  code="Throttling", message="Rate exceeded")
    proc = ctx.boot()
    ctx.settle(proc)
    wait_for(lambda: ctx.completions(), timeout=15, what="the hook's own timeout")
    return [] if proc.wait(10) == 1 else [f"exit {proc.returncode}"]


def asg_heartbeat_failing(ctx):
    ctx.aws_fault(service="autoscaling", action="RecordLifecycleActionHeartbeat", status=500,
                  code="InternalFailure", message="injected")
    ctx.configure(lifecycle={"heartbeat_interval": "300ms"})
    ctx.settle(ctx.boot(register_delay=2.5))
    beats = ctx.client_calls("RecordLifecycleActionHeartbeat")
    problems = [] if len(beats) >= 2 else [f"{len(beats)} heartbeat calls"]
    if any(b["status"] != 500 for b in beats):
        problems.append("a heartbeat got through")
    return problems


def asg_action_already_finished(ctx):
    ctx.moto.set_lifecycle_state(ctx.world.asg, ctx.world.instance_id, "InService")
    ctx.settle(ctx.boot())
    return []


# --- rows: crashes ----------------------------------------------------------------------------

def crash_at(phase_name: str, status: str = "ok", slow: Callable[[Ctx], None] | None = None,
             agent_first: bool = False):
    """SIGKILL the moment `phase_name` reaches `status`, restart, converge. `slow` makes the
    next phase take a moment so the kill lands on the boundary."""
    def run(ctx: Ctx):
        if slow:
            slow(ctx)
        ctx.prewrite_old()
        ctx.write_config()
        first = ctx.spawn()
        if agent_first:
            assert ctx.wait_written(first)
            ctx.start_agent()
        ctx.kill_when(first, lambda s: (phase_of(s, phase_name) or {}).get("status") == status)
        problems = []
        if ecs_config_kind(ctx) == "partial":
            problems.append("ecs.config partial right after the kill")
        written = ctx.ecs_boot.ecs_config.read_bytes()
        ctx.imds.clear_faults()
        ctx.moto._admin("DELETE", "/faults")
        again = ctx.spawn()
        if ctx.agent is None:
            assert ctx.wait_written(again), ctx.log()[-2000:]
            ctx.start_agent()
        ctx.settle(again)
        if written != ctx.old and ctx.ecs_boot.ecs_config.read_bytes() != written:
            problems.append("the restart wrote different content")
        done = [(c["result"], c["source"]) for c in ctx.completions()]
        if done != [("CONTINUE", "api")]:
            problems.append(f"launch completions {done}")
        return problems
    return run


def crash_during_containers(ctx):
    """SIGKILL while an essential system container is created but not yet counted as up; the
    restart adopts it: one container, not two."""
    require_engine_to_ourselves()
    ensure_image()
    name = f"faults-{uuid.uuid4().hex[:8]}"
    ctx.cleanups.append(lambda: docker_cli("rm", "-f", name))
    ctx.env = {"DOCKER_HOST": None}
    ctx.containers = [essential(name, IMAGE, min_uptime="2s")]
    ctx.configure(docker={"engine_wait": "5s"})
    proc = ctx.boot()

    def created(_state):
        return docker_cli("ps", "-a", "-q", "--filter", f"name=^{name}$", timeout=20).stdout.strip()
    ctx.kill_when(proc, created)
    again = ctx.spawn()
    ctx.settle(again)
    ids = docker_cli("ps", "-a", "-q", "--filter", f"name=^{name}$", timeout=20).stdout.split()
    problems = [] if len(ids) == 1 else [f"{len(ids)} containers named {name}"]
    done = [(c["result"], c["source"]) for c in ctx.completions()]
    if done != [("CONTINUE", "api")]:
        problems.append(f"launch completions {done}")
    return problems


def crash_during_drain(ctx):
    ctx.configure(drain={"deadline": "30s"})
    proc = ctx.boot(stop_delay=3)
    ctx.settle(proc)
    ctx.agent.add_tasks("web", kind="service", count=2)
    ctx.scale_in()
    ctx.kill_when(proc, lambda s: (s.get("drain") or {}).get("tasks_left") == 2)
    again = ctx.spawn()
    ctx.settle(again, outcomes=("terminated",))
    problems = []
    if len(ctx.client_calls("UpdateContainerInstancesState")) != 1:
        problems.append("DRAINING set more than once")
    if [c["result"] for c in ctx.completions(TERMINATING)] != ["CONTINUE"]:
        problems.append(f"terminate completions {ctx.completions(TERMINATING)}")
    return problems


KILLS = 14


def crash_loop_during_write(ctx):
    """Many SIGKILLs around the moment ecs.config is written: the file is only ever absent, old
    or complete; state.json always parses. Each run renders new content (a tag changes), so each
    one really writes; the kill times spread around the write time measured first."""
    rng = random.Random(10)
    ctx.prewrite_old()
    ctx.write_config()
    base_tags = dict(ctx.imds.tags)
    start = time.monotonic()
    probe = ctx.spawn()
    assert ctx.wait_written(probe), ctx.log()[-2000:]
    write_at = time.monotonic() - start
    probe.send_signal(signal.SIGKILL)
    probe.wait(5)
    ctx.crash = True
    problems, seen = [], []
    for i in range(KILLS):
        ctx.imds.set_tags({**base_tags, "ecs-boot:attribute:boot": f"n{i}"})
        before = ctx.ecs_boot.ecs_config.read_bytes()
        proc = ctx.spawn()
        time.sleep(rng.uniform(0.3, 1.8) * write_at)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        kind = ecs_config_kind(ctx)
        after = ctx.ecs_boot.ecs_config.read_bytes()
        seen.append("partial" if kind == "partial" else "old" if after == before else "new")
        if kind == "partial":
            problems.append("ecs.config partial after a kill")
        if ctx.ecs_boot.state_file.exists() and ctx.state() is None:
            problems.append("state.json unparsable after a kill")
    final = ctx.spawn()
    assert ctx.wait_written(final), ctx.log()[-2000:]
    ctx.start_agent()
    ctx.settle(final)
    ctx.got = (describe_outcome(ctx) + f" (after {KILLS} kills around the write at "
               f"{write_at * 1000:.0f} ms: {seen.count('old')} left the previous file, "
               f"{seen.count('new')} the new one, {seen.count('partial')} partial)")
    return problems


# --- rows: disk -------------------------------------------------------------------------------

def _mount(ctx, *argv):
    out = subprocess.run(["mount", *argv], capture_output=True, text=True)
    if out.returncode != 0:
        raise NotCovered(f"mount not permitted here: {out.stderr.strip()[:120]}")


def _umount_later(ctx, path: Path):
    def undo():
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
    ctx.cleanups.append(undo)


def disk_read_only(ctx):
    etc = ctx.ecs_boot.ecs_config.parent
    ctx.prewrite_old()
    _mount(ctx, "--bind", str(etc), str(etc))
    _umount_later(ctx, etc)
    _mount(ctx, "-o", "remount,ro,bind", str(etc))
    ctx.prewrite_old = lambda: None  # already there, and read-only now
    ctx.settle(ctx.boot())
    return []


def disk_full(ctx):
    etc = ctx.ecs_boot.ecs_config.parent
    etc.mkdir(parents=True, exist_ok=True)
    _mount(ctx, "-t", "tmpfs", "-o", "size=4k,mode=0755", "tmpfs", str(etc))
    _umount_later(ctx, etc)
    ctx.prewrite_old()
    try:
        (etc / "filler").write_bytes(b"x" * 8192)
    except OSError:
        pass  # full: what we wanted
    ctx.prewrite_old = lambda: None
    ctx.settle(ctx.boot())
    return []


# --- the matrix -------------------------------------------------------------------------------

def _slow_tags(ctx):
    ctx.imds.set_delay(0.4, path_prefix=TAGS)


def _slow_s3(ctx):
    ctx.aws_fault(service="s3", action="GetObject", delay=0.4, count=1)


FAULTS = [
    Fault("IMDS: 500 ×2 on the identity document", "identity", "in_service", imds_500_then_ok),
    Fault("IMDS: 500 on every identity read", "identity",
          "failed, hook left to DefaultResult: IMDS /latest/dynamic/instance-identity", imds_500_forever, before_write=True),
    Fault("IMDS: tags answer slower than the timeout (4 s > 2 s)", "tags",
          "ABANDON: /latest/meta-data/tags/instance", imds_slower_than_timeout,
          before_write=True),
    Fault("IMDS: slow identity (1.2 s, under the timeout)", "identity", "in_service",
          imds_slow_within_timeout),
    Fault("IMDS: token rejected mid-run (401 → new token)", "tags", "in_service",
          imds_token_rejected_at_boot),
    Fault("IMDS: token rejected while in service (401 → new token)", "termination-watch",
          "terminated: CONTINUE", imds_token_rejected_in_service),
    Fault("IMDS: tags in metadata disabled", "tags", "ABANDON: not readable from IMDS",
          imds_tags_disabled, before_write=True),
    Fault("S3: AccessDenied (403)", "credentials", "ABANDON: AccessDenied", s3_access_denied,
          before_write=True),
    Fault("S3: NoSuchKey", "credentials", "ABANDON: NoSuchKey", s3_no_such_key,
          before_write=True),
    Fault("S3: 500 ×2 then OK", "credentials", "in_service", s3_500_then_ok),
    Fault("S3: slow GetObject (2 s, under the SDK timeout)", "credentials", "in_service",
          s3_slow),
    Fault("S3: malformed JSON", "credentials", "ABANDON: not valid JSON", s3_malformed_json,
          before_write=True),
    Fault("S3: object over 64 KiB", "credentials", "ABANDON: over the 65536-byte limit",
          s3_too_large, before_write=True),
    Fault("SSM: AccessDeniedException", "credentials", "ABANDON: AccessDeniedException",
          ssm_access_denied, world={"creds": "ssm"}, before_write=True),
    Fault("SSM: parameter not a SecureString", "credentials", "ABANDON: SecureString",
          ssm_not_secure, world={"creds": "ssm"}, before_write=True),
    Fault("Docker: engine down at start", "containers",
          "ABANDON: essential system container", docker_engine_down),
    Fault("Docker: image pull failing", "containers", "ABANDON: essential system container",
          docker_pull_failing),
    Fault("Docker: engine gone mid-run", "containers", "ABANDON: essential system container",
          docker_engine_gone),
    Fault("ECS agent: never registers", "registration", "ABANDON: did not register",
          agent_never_registers),
    Fault("ECS agent: registers into another cluster", "registration",
          "ABANDON: someone-elses", agent_other_cluster),
    Fault("ECS agent: dies after registering (introspection gone)", "drain",
          "terminated: CONTINUE", agent_dies_after_registering),
    Fault("ASG: Throttling ×2 on CompleteLifecycleAction", "launch-hook", "in_service",
          asg_throttled_then_ok),
    Fault("ASG: Throttling on every CompleteLifecycleAction", "launch-hook",
          "ABANDON by timeout: Throttling", asg_throttled_forever,
          world={"heartbeat_timeout": 3}),
    Fault("ASG: every heartbeat fails (500)", "registration", "in_service",
          asg_heartbeat_failing),
    Fault("ASG: action already finished", "launch-hook", "in_service (hook already ended)",
          asg_action_already_finished),
    Fault("Crash: SIGKILL when identity ok, restart", "identity", "in_service",
          crash_at("identity", slow=_slow_tags)),
    Fault("Crash: SIGKILL when tags ok, restart", "tags", "in_service",
          crash_at("tags", slow=_slow_s3)),
    Fault("Crash: SIGKILL when credentials ok, restart", "credentials", "in_service",
          crash_at("credentials")),
    Fault("Crash: SIGKILL when ecs.config written, restart", "ecs-config-write", "in_service",
          crash_at("ecs-config-write")),
    Fault("Crash: SIGKILL when registered, restart", "registration", "in_service",
          crash_at("registration", agent_first=True)),
    Fault("Crash: SIGKILL after the launch hook, restart", "launch-hook", "in_service",
          crash_at("launch-hook", agent_first=True)),
    Fault("Crash: SIGKILL while a system container starts, restart", "containers", "in_service",
          crash_during_containers),
    Fault("Crash: SIGKILL while draining, restart", "drain", "terminated: CONTINUE",
          crash_during_drain),
    Fault(f"Crash: {KILLS} SIGKILLs around the atomic write, then a full run", "ecs-config-write",
          "in_service", crash_loop_during_write),
    Fault("Disk: /etc/ecs read-only", "ecs-config-write", "ABANDON: Read-only file system",
          disk_read_only, before_write=True),
    Fault("Disk: /etc/ecs full (ENOSPC)", "ecs-config-write",
          "ABANDON: No space left on device", disk_full, before_write=True),
]


faults_plugin.EXPECTED_ROWS = len(FAULTS)


@pytest.mark.parametrize("fault", FAULTS, ids=[f"{f.phase}:{f.name}" for f in FAULTS])
def test_fault(fault, moto, imds, make_world, ecs_boot, fake_agent, tmp_path):
    world = make_world(**fault.world)
    ctx = Ctx(moto, imds, ecs_boot, fake_agent, world, tmp_path)
    started = time.monotonic()
    try:
        problems = fault.run(ctx)
        # Judged before the cleanups: a mount undone would hide what was written under it.
        got, passed, state_lost = judge(ctx, fault, problems)
    except NotCovered as why:
        faults_plugin.record(fault.name, fault.phase, fault.expected, f"not covered: {why}",
                             None)
        pytest.skip(str(why))
    except Exception as err:
        faults_plugin.record(fault.name, fault.phase, fault.expected,
                             f"error: {type(err).__name__}: {err}", False,
                             state_lost=ctx.state() is None and ctx.ecs_boot.state_file.exists(),
                             seconds=time.monotonic() - started)
        raise
    finally:
        for proc in ecs_boot._spawned:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        for undo in reversed(ctx.cleanups):
            try:
                undo()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
    faults_plugin.record(fault.name, fault.phase, fault.expected, got, passed, state_lost,
                         time.monotonic() - started)
    assert passed, f"{fault.name}: {problems}\n--- ecs-boot log ---\n{ctx.log()[-3000:]}"
