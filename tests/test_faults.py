"""Issue 10 and 16, the fault matrix: every fault ends in a converged state or a clean ABANDON
with its cause, nothing is ever half written, and each invariant is judged on what it can
observe.

One row per fault and phase (`FAULTS`). Each row runs the real binary (`ecs-boot run`) against
moto, the fake IMDS and the fake ECS agent, injects its fault, and is judged twice:

* its outcome: `in_service` / `terminated: RESULT` (converged despite the fault), `ABANDON:
  <cause>` (the launch hook ABANDONed by ecs-boot with the cause), or `failed, hook left to
  DefaultResult: <cause>` / `ABANDON by timeout: <cause>` (ecs-boot could not reach the hook: it
  fails with the cause and the hook's own timeout decides);
* the invariants every row must keep (`harness.faultctx.INVARIANTS`): state.json parses;
  ecs.config is absent, the old file byte for byte, or complete, and a complete one is the
  expected render; no CompleteLifecycleAction after an accepted one (moto's call log, refused
  calls included); DRAINING set once; no temp file left by a clean failure. A row breaking the
  first two counts as "state lost".

The rows added for issue 16 (kills while a request is in flight, pauses inside the atomic write,
syscall traces, power loss, fragments, oversized answers, SIGHUP, a full state directory) live in
test_faults_rows.py. At the end of the session the table and the summary line are printed and
written to .cache/faults-latest.md (see faults_plugin.py).

Every run has an old ecs.config on disk first (a reboot of an instance that ran before, with a
line of its own from user data), so "old content intact" is checked on every failure before the
write. Runs that configure no system container get DOCKER_HOST pointing at nothing, so they never
touch the Docker engine's containers.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest

import faults_plugin
import test_faults_rows as new_rows
from harness.faultctx import (IDENTITY, IMAGE, MANAGED_LABEL,
                              TAGS, TERMINATING, Ctx, Fault, NotCovered, describe_outcome,
                              ecs_config_kind, judge, phase_of, INVARIANTS)
from harness.engine_proxy import SocketProxy
from harness.procs import wait_for

pytest_plugins = ["faults_plugin"]


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


def ecs_draining_denied_for_good(ctx):
    """DRAINING refused on every try (a permission missing): the drain step keeps failing, and at
    the drain deadline the drain ends as one that ran out of time; the hook is completed with
    result_on_deadline instead of being held until its global timeout."""
    ctx.configure(drain={"deadline": "4s"})
    ctx.aws_fault(service="ecs", action="UpdateContainerInstancesState", status=400,
                  code="AccessDeniedException", message="injected: not authorized")
    proc = ctx.boot(stop_delay=0.5)
    ctx.settle(proc)
    ctx.agent.add_tasks("web", kind="service", count=1)
    ctx.scale_in()
    s = ctx.settle(proc, outcomes=("terminated",))
    drain = s.get("drain") or {}
    problems = [] if drain.get("state") == "deadline" else [f"drain {drain}"]
    if not ctx.client_calls("UpdateContainerInstancesState"):
        problems.append("DRAINING never tried")
    return problems


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
    Fault("ECS: DRAINING denied for good (drain deadline 4 s)", "drain",
          "terminated: CONTINUE", ecs_draining_denied_for_good),
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


FAULTS += new_rows.FAULTS
faults_plugin.EXPECTED_ROWS = len(FAULTS)
faults_plugin.INVARIANTS = INVARIANTS


@pytest.mark.parametrize("fault", FAULTS, ids=[f"{f.phase}:{f.name}" for f in FAULTS])
def test_fault(fault, moto, imds, make_world, ecs_boot, fake_agent, tmp_path):
    world = make_world(**fault.world)
    ctx = Ctx(moto, imds, ecs_boot, fake_agent, world, tmp_path)
    started = time.monotonic()
    try:
        problems: list[str] = []
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
                         time.monotonic() - started, problems)
    assert passed, f"{fault.name}: {problems}\n--- ecs-boot log ---\n{ctx.log()[-3000:]}"
