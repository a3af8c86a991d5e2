"""One fault-matrix row's context and how every row is judged (tests/test_faults.py).

`Ctx` runs the real binary (`ecs-boot run`) against moto, the fake IMDS and the fake ECS agent;
`judge` checks the row's outcome and the invariants every row must keep, each on what it can
observe (see `INVARIANTS`, also printed under the README's fault table).
"""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .procs import free_port, wait_for

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
        self.cluster = world.cluster          # what ECS_CLUSTER must say in a complete file
        self.expect_credentials = True        # the world's credentials end up in the file
        self.lost_midway = False              # state or ecs.config broken at some point
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

    def spawn(self, env: dict | None = None, wrap: list[str] | None = None):
        self.proc = self.ecs_boot.spawn("run", env={**self.env, **(env or {})}, wrap=wrap)
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

    def hold(self, service: str, action: str, when: str = "after", limit: float = 120,
             **params):
        """Hold ecs-boot's next `action` (see calllog.Hold): "after" moto acted on it, or
        "drop" it before moto sees it; the answer goes out on release or after `limit` s."""
        hold = self.moto.hold(service, action, when=when, params=params, limit=limit)
        self.cleanups.append(hold.release)
        return hold

    def kill(self, proc) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.crash = True

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
        # already_done: ecs-boot found the action ended by someone else (the hook's timeout);
        # the harness's own log then says who completed it.
        if h and h["result"] == "ABANDON" and not h.get("already_done"):
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


INVARIANTS = [
    ("state.json parses", "the file, after the row (a row breaking this or the next counts as "
     "STATE LOST)"),
    ("ecs.config is absent, the old file byte for byte, or complete", "the file: one ecs-boot "
     "block closed by its END marker, `KEY=value` lines only"),
    ("a complete ecs.config is the expected render", "the file against `ecs-boot render "
     "--show-secrets` run on the same world and previous file, plus what the test knows "
     "itself: the world's cluster and credentials in the block, the user-data line kept"),
    ("each lifecycle transition completed at most once", "moto's call log: no "
     "CompleteLifecycleAction from ecs-boot after one was accepted, whether the second is "
     "accepted or refused (ValidationError), and at most one accepted completion"),
    ("DRAINING set at most once", "moto's call log: no UpdateContainerInstancesState after an "
     "accepted one"),
    ("an ABANDON outcome is the only launch completion", "the harness's lifecycle log"),
    ("no temp file left by a clean failure", "the directory listing of /etc/ecs"),
]


def completion_problems(ctx: Ctx) -> list[str]:
    """Every CompleteLifecycleAction for this instance, accepted or refused, in arrival order:
    once one was accepted for a hook, ecs-boot must not call again for it."""
    problems, accepted = [], {}
    for call in ctx.moto.calls(service="autoscaling", action="CompleteLifecycleAction"):
        params = call["params"]
        if params.get("InstanceId", ctx.world.instance_id) != ctx.world.instance_id:
            continue
        hook = params.get("LifecycleHookName")
        if hook in accepted and call["source"] == "client":
            answer = ("accepted" if call["accepted"] else
                      f"refused: {(call.get('error') or {}).get('code', call['status'])}")
            problems.append(f"CompleteLifecycleAction {hook} "
                            f"{params.get('LifecycleActionResult')} called again after "
                            f"{accepted[hook]} was accepted ({answer})")
        if call["accepted"]:
            accepted.setdefault(hook, params.get("LifecycleActionResult"))
    for transition in (LAUNCHING, TERMINATING):
        n = len(ctx.completions(transition))
        if n > 1:
            problems.append(f"{n} completions of {transition}")
    return problems


def draining_problems(ctx: Ctx) -> list[str]:
    calls = ctx.moto.calls(service="ecs", action="UpdateContainerInstancesState")
    first = next((i for i, c in enumerate(calls) if c["accepted"]), None)
    again = [c for c in calls[first + 1:] if c["source"] == "client"] if first is not None else []
    return [f"UpdateContainerInstancesState called {len(again)} more time(s) after it was "
            "accepted"] if again else []


def expected_render(ctx: Ctx) -> bytes:
    """What `run` should have written: `ecs-boot render --show-secrets` against the same world,
    config and previous file (faults and holds off, so it sees what the run saw in the end)."""
    ctx.moto._admin("DELETE", "/faults")
    ctx.moto.release_holds()
    ctx.imds.clear_faults()
    root = ctx.tmp_path / "render-root"
    (root / "etc/ecs").mkdir(parents=True, exist_ok=True)
    (root / "etc/ecs/ecs.config").write_bytes(ctx.old)
    argv = [str(ctx.ecs_boot.binary), "--root", str(root)]
    if ctx.ecs_boot.config_path:
        argv += ["--config", str(ctx.ecs_boot.config_path)]
    out = subprocess.run(argv + ["render", "--show-secrets"], capture_output=True,
                         env=ctx.ecs_boot._env(ctx.env), timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"render failed: {out.stderr.decode(errors='replace')[-500:]}")
    return out.stdout


def content_problems(ctx: Ctx, data: bytes) -> list[str]:
    """A complete ecs.config against the render and against what the test knows on its own."""
    problems = []
    text = data.decode(errors="replace")
    block = text[text.find(BEGIN):]
    outside = text[: text.find(BEGIN)]
    if f"\nECS_CLUSTER={ctx.cluster}\n" not in block:
        problems.append(f"ECS_CLUSTER is not {ctx.cluster} in the block")
    for line in ctx.old.decode().splitlines():
        if line.startswith("ECS_LOGFILE=") and line not in outside.splitlines():
            problems.append(f"user-data line {line!r} lost")
    if ctx.world.registry_auth and ctx.expect_credentials:
        import base64
        auth = base64.b64encode(
            f"{ctx.world.registry_user}:{ctx.world.registry_password}".encode()).decode()
        if auth not in block:
            problems.append("the world's registry credentials are not in the block")
    try:
        expected = expected_render(ctx)
    except AssertionError as err:
        return problems + [f"cannot render the expected ecs.config: {err}"]
    if data != expected:
        problems.append(f"ecs.config differs from the expected render ({len(data)} bytes vs "
                        f"{len(expected)})")
    return problems


def judge(ctx: Ctx, fault: Fault, problems: list[str]) -> tuple[str, bool, bool]:
    """The row's outcome and every invariant. Call-log checks come first: rendering the
    expected ecs.config makes calls of its own."""
    got = (ctx.got or describe_outcome(ctx)).replace(str(ctx.ecs_boot.root), "<root>")
    problems += completion_problems(ctx) + draining_problems(ctx)
    state_lost = ctx.lost_midway
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
    if got.startswith("ABANDON: ") and [c["result"] for c in ctx.completions()] != ["ABANDON"]:
        problems.append(f"launch completions {ctx.completions()}")
    if not ctx.crash:
        temps = [p.name for p in ctx.ecs_boot.ecs_config.parent.glob(".ecs.config.tmp.*")]
        if temps:
            problems.append(f"temp files left: {temps}")
    if not matches(fault.expected, got):
        problems.append(f"expected {fault.expected!r}, got {got!r}")
    if kind == "complete":
        problems += content_problems(ctx, ctx.ecs_boot.ecs_config.read_bytes())
    return got, not problems, state_lost
