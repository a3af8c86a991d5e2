"""Fault-matrix rows added for issue 16 (the matrix itself is test_faults.py; no tests here).

Where the risk is: SIGKILL while a request is in flight (moto acted, ecs-boot never heard), and
inside the atomic write (an LD_PRELOAD shim stops the run there); atomicity and durability read
off a syscall trace, a power loss replayed from that trace; config fragments, a tag that
overflows, oversized answers, SIGHUP during a boot, a full state directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from harness import fstrace
from harness.faultctx import (IDENTITY, TERMINATING, Ctx, Fault, NotCovered, describe_outcome,
                              ecs_config_kind)
from harness.procs import wait_for
from harness.shim import Pause

FRAGMENT_KEY = "fragments/group.toml"
MIB = 1024 * 1024


def _restart_and_settle(ctx: Ctx, **spawn) -> None:
    again = ctx.spawn(**spawn)
    if ctx.agent is None:
        assert ctx.wait_written(again), ctx.log()[-2000:]
        ctx.start_agent()
    ctx.settle(again)


def _accepted_completions(ctx: Ctx, transition) -> list[tuple[str, str]]:
    return [(c["result"], c["source"]) for c in ctx.completions(transition)]


# --- in flight: moto acted, the answer is held, ecs-boot dies -------------------------------

def inflight_continue(ctx):
    """The launch CONTINUE reached Auto Scaling, ecs-boot is killed before the answer: the
    restart must not complete again (it must find out the hook already ended)."""
    hold = ctx.hold("autoscaling", "CompleteLifecycleAction", LifecycleActionResult="CONTINUE")
    proc = ctx.boot()
    hold.wait_arrived(40)
    ctx.kill(proc)
    hold.release()
    _restart_and_settle(ctx)
    done = _accepted_completions(ctx, "autoscaling:EC2_INSTANCE_LAUNCHING")
    return [] if done == [("CONTINUE", "api")] else [f"launch completions {done}"]


def lost_continue(ctx):
    """The launch CONTINUE never reached Auto Scaling (lost on the way) and ecs-boot is killed
    waiting: the restart must complete it — a record of the intent is no completion."""
    hold = ctx.hold("autoscaling", "CompleteLifecycleAction", when="drop",
                    LifecycleActionResult="CONTINUE")
    proc = ctx.boot()
    hold.wait_arrived(40)
    ctx.kill(proc)
    hold.release()
    _restart_and_settle(ctx)
    done = _accepted_completions(ctx, "autoscaling:EC2_INSTANCE_LAUNCHING")
    return [] if done == [("CONTINUE", "api")] else [f"launch completions {done}"]


def inflight_abandon(ctx):
    """The ABANDON of a failed boot reached Auto Scaling, ecs-boot is killed before the answer;
    the restart fails the same way and must not ABANDON a second time."""
    ctx.aws_fault(service="s3", action="GetObject", status=403, code="AccessDenied",
                  message="Access Denied")
    hold = ctx.hold("autoscaling", "CompleteLifecycleAction", LifecycleActionResult="ABANDON")
    ctx.prewrite_old()
    ctx.write_config()
    proc = ctx.spawn()  # not boot(): that waits for the write or the exit, neither comes
    hold.wait_arrived(40)
    ctx.kill(proc)
    hold.release()
    again = ctx.spawn()
    ctx.settle(again)
    again.wait(30)
    done = _accepted_completions(ctx, "autoscaling:EC2_INSTANCE_LAUNCHING")
    return [] if done == [("ABANDON", "api")] else [f"launch completions {done}"]


def slow_completion_answer(ctx):
    """Auto Scaling takes the CONTINUE at once but its answer comes after 12 s, past the SDK's
    attempt timeout: a blind retry is a second completion (refused: already ended)."""
    ctx.hold("autoscaling", "CompleteLifecycleAction", limit=12,
             LifecycleActionResult="CONTINUE")
    ctx.settle(ctx.boot(), timeout=60)
    return []


def inflight_draining(ctx):
    """DRAINING reached ECS, ecs-boot is killed before the answer: the restart resumes the
    drain without setting DRAINING again and completes the terminate hook once."""
    ctx.configure(drain={"deadline": "20s"})
    proc = ctx.boot(stop_delay=1.0)
    ctx.settle(proc)
    ctx.agent.add_tasks("web", kind="service", count=2)
    hold = ctx.hold("ecs", "UpdateContainerInstancesState")
    ctx.scale_in()
    hold.wait_arrived(40)
    ctx.kill(proc)
    hold.release()
    again = ctx.spawn()
    ctx.settle(again, outcomes=("terminated",))
    problems = []
    done = _accepted_completions(ctx, TERMINATING)
    if done != [("CONTINUE", "api")]:
        problems.append(f"terminate completions {done}")
    live = [t for t in ctx.agent.tasks() if t.get("KnownStatus") != "STOPPED"]
    if live:
        problems.append(f"{len(live)} tasks still running after the drain")
    return problems


def inflight_credentials(ctx):
    """The credentials GetObject answered, ecs-boot is killed before reading it: the old
    ecs.config stays, the restart fetches again and converges."""
    hold = ctx.hold("s3", "GetObject")
    ctx.prewrite_old()
    ctx.write_config()
    proc = ctx.spawn()
    hold.wait_arrived(40)
    problems = [] if ecs_config_kind(ctx) == "old" else [
        f"ecs.config is {ecs_config_kind(ctx)} while the credentials were in flight"]
    ctx.kill(proc)
    hold.release()
    _restart_and_settle(ctx)
    return problems


# --- inside the atomic write (LD_PRELOAD shim) ------------------------------------------------

def paused_write(op: str, match: str, nth: int = 1):
    """Stop the run at `op` on the file being written (`open`: its new content not yet
    written; `rename`: written, not yet in place), look at the target, SIGKILL, restart."""
    def run(ctx: Ctx):
        pause = Pause(ctx.tmp_path, op, match, nth)
        ctx.cleanups.append(pause.resume)
        ctx.prewrite_old()
        ctx.write_config()
        proc = ctx.spawn(env=pause.env)
        where = pause.wait(proc)
        problems = []
        if match == "ecs.config" and ecs_config_kind(ctx) != "old":
            problems.append(f"ecs.config is {ecs_config_kind(ctx)} during its write "
                            f"({where.split()[0]})")
        if match == "state.json" and ctx.ecs_boot.state_file.exists() and ctx.state() is None:
            problems.append(f"state.json unparsable during its write ({where.split()[0]})")
            ctx.lost_midway = True
        ctx.kill(proc)
        pause.resume()
        _restart_and_settle(ctx)
        done = _accepted_completions(ctx, "autoscaling:EC2_INSTANCE_LAUNCHING")
        if done != [("CONTINUE", "api")]:
            problems.append(f"launch completions {done}")
        return problems
    return run


# --- syscall trace: atomic and durable, and a power loss replayed -----------------------------

def _require_strace() -> None:
    if subprocess.run(["strace", "-V"], capture_output=True).returncode != 0:
        raise NotCovered("no strace (apt-get install strace)")


def _traced_boot(ctx: Ctx, settle: bool = True):
    _require_strace()
    trace = ctx.tmp_path / "strace.txt"
    ctx.prewrite_old()
    ctx.write_config()
    proc = ctx.spawn(wrap=[*fstrace.STRACE_ARGV, "-o", str(trace)])
    assert ctx.wait_written(proc, timeout=60), ctx.log()[-2000:]
    ctx.start_agent()
    if settle:
        ctx.settle(proc, timeout=60)
    return proc, trace


def traced_atomic_write(name: str):
    """Every replacement of `name` (ecs.config or state.json): temp file in the same directory,
    write, fsync(file), rename, fsync(directory) — read off strace, so no timing hides a gap."""
    def run(ctx: Ctx):
        proc, trace = _traced_boot(ctx)
        ctx.kill(proc)  # strace has the whole boot
        ops = fstrace.parse(trace.read_text(errors="replace"))
        path = {"ecs.config": ctx.ecs_boot.ecs_config, "state.json": ctx.ecs_boot.state_file}[name]
        replaced = sum(1 for op in ops if op.call.startswith("rename") and op.dest == str(path))
        ctx.got = describe_outcome(ctx) + f" (traced: {name} replaced {replaced}×)"
        # state.json: only its stage, intents and completions must reach the disk (fsync costs
        # the boot path); the power-loss rows judge that the right ones do.
        return fstrace.atomic_write_problems(ops, str(path), every_durable=name != "state.json")
    return run


def power_loss(in_flight: bool):
    """Power lost (in service, or while the launch CONTINUE is in flight: Auto Scaling took it,
    the answer never came): the disk keeps metadata but file data only up to each file's last
    fsync (replayed from the syscall trace). Right after, ecs.config is the old file or the whole
    new one and state.json parses; a restart converges without completing the hook again."""
    def run(ctx: Ctx):
        hold = (ctx.hold("autoscaling", "CompleteLifecycleAction",
                         LifecycleActionResult="CONTINUE") if in_flight else None)
        proc, trace = _traced_boot(ctx, settle=not in_flight)
        if hold:
            hold.wait_arrived(60)
        ctx.kill(proc)
        ops = fstrace.parse(trace.read_text(errors="replace"))
        image = fstrace.power_loss_image(ops, {str(ctx.ecs_boot.ecs_config): ctx.old})
        root = str(ctx.ecs_boot.root)
        for path, data in image.items():
            if not path.startswith(root + "/"):
                continue
            if data is None:
                Path(path).unlink(missing_ok=True)
            else:
                Path(path).write_bytes(data)
        if hold:
            hold.release()
        problems = []
        kind = ecs_config_kind(ctx)
        if kind not in ("old", "complete"):
            problems.append(f"after the power loss ecs.config is {kind}")
            ctx.lost_midway = True
        if ctx.ecs_boot.state_file.exists() and ctx.state() is None:
            size = ctx.ecs_boot.state_file.stat().st_size
            problems.append(f"after the power loss state.json is unparsable ({size} bytes)")
            ctx.lost_midway = True
        lost = {Path(p).name: len(d or b"") for p, d in image.items() if p.startswith(root)}
        ctx.agent.kill()  # the power went for the agent too
        ctx.agent = None
        _restart_and_settle(ctx)
        ctx.got = describe_outcome(ctx) + f" (after the power loss: ecs.config {kind}, " \
            f"state.json {lost.get('state.json', 0)} bytes)"
        done = _accepted_completions(ctx, "autoscaling:EC2_INSTANCE_LAUNCHING")
        if done != [("CONTINUE", "api")]:
            problems.append(f"launch completions {done}")
        return problems
    return run


# --- config fragments named by the ecs-boot:config tag ----------------------------------------

def fragment(body: bytes | None, fault: dict | None = None):
    def run(ctx: Ctx):
        bucket, _ = ctx.s3_location()
        if body is not None:
            ctx.moto.client("s3").put_object(Bucket=bucket, Key=FRAGMENT_KEY, Body=body)
        if fault:
            ctx.aws_fault(**fault)
        ctx.settle(ctx.boot())
        return []
    return run


FRAGMENT_WORLD = {"tags": {"ecs-boot:config": f"s3://demo-boot-config/{FRAGMENT_KEY}"}}
OUTSIDE_KEY = "registry/group.toml"  # in the world's bucket, outside its fragments/ prefix


def fragment_outside_trust(ctx):
    """A tag naming a fragment outside [trust] fragment_prefixes: refused before any request
    (the call log must show no GetObject for it)."""
    bucket, _ = ctx.s3_location()
    ctx.moto.client("s3").put_object(Bucket=bucket, Key=OUTSIDE_KEY, Body=b"[ecs]\n")
    ctx.settle(ctx.boot())
    asked = [c for c in ctx.client_calls("GetObject") if c["params"].get("Key") == OUTSIDE_KEY]
    return [f"{len(asked)} GetObject call(s) for the refused location"] if asked else []


# --- tags and oversized answers ---------------------------------------------------------------

def tag_overflow(ctx):
    ctx.settle(ctx.boot())
    return ["ecs-boot panicked"] if "panicked" in ctx.log() else []


def imds_oversized_document(ctx):
    ctx.imds.set_oversize(8 * MIB, path_prefix=IDENTITY)
    proc = ctx.boot()
    ctx.settle(proc)
    if proc.poll() is None:
        return ["took the 8 MiB document and ran on"]
    return [] if proc.returncode != 0 else ["exit 0"]


def s3_no_content_length(ctx):
    ctx.aws_fault(service="s3", action="GetObject", stream_bytes=64 * MIB)
    ctx.settle(ctx.boot())
    sent = max((r.get("sent", 0) for r in json.loads(ctx.moto._admin("GET", "/faults"))
                ["faults"]), default=0)
    ctx.got = describe_outcome(ctx) + f" (read {sent // 1024} KiB of a 64 MiB answer)"
    return [] if sent <= 16 * MIB else [f"read {sent // MIB} MiB of an answer with no "
                                        "Content-Length before giving up"]


def introspection_oversized_tasks(ctx):
    ctx.configure(drain={"deadline": "10s"})
    proc = ctx.boot(stop_delay=0.5)
    ctx.settle(proc)
    ctx.agent.add_tasks("web", kind="service", count=1)
    ctx.agent.set_oversize_tasks(8 * MIB)
    ctx.scale_in()
    s = ctx.settle(proc, timeout=60, outcomes=("terminated",))
    drain = s.get("drain") or {}
    return [] if drain.get("state") == "drained" else [f"drain {drain.get('state')}"]


# --- SIGHUP during a boot ---------------------------------------------------------------------

def sighup_during_boot(ctx):
    """SIGHUP while identity is read and again while registration is awaited: the boot goes on
    (a reload comes after), one completion, and the run is still there afterwards."""
    ctx.imds.set_delay(0.5, path_prefix=IDENTITY)
    ctx.prewrite_old()
    ctx.write_config()
    proc = ctx.spawn()
    wait_for(lambda: ctx.phase(proc, "identity") or proc.poll() is not None, timeout=20,
             what="identity phase")
    proc.send_signal(signal.SIGHUP)
    assert ctx.wait_written(proc), ctx.log()[-2000:]
    proc.send_signal(signal.SIGHUP)
    ctx.start_agent(register_delay=1.0)
    ctx.settle(proc)
    time.sleep(1.0)  # the reload runs once in service
    problems = [] if proc.poll() is None else [f"ecs-boot exited {proc.returncode} after HUP"]
    done = _accepted_completions(ctx, "autoscaling:EC2_INSTANCE_LAUNCHING")
    if done != [("CONTINUE", "api")]:
        problems.append(f"launch completions {done}")
    return problems


# --- a full state directory -------------------------------------------------------------------

PREVIOUS_STATE = {"schema": 1, "version": "0.0.0", "commit": "previous", "pid": 1,
                  "started_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z",
                  "outcome": "in_service"}


def state_dir_full(ctx):
    """/var/lib/ecs-boot full (a 16 KiB tmpfs, filled): the state is a record, so the boot goes
    on; the previous state.json stays whole and no temp file is left eating the space."""
    state_dir = ctx.ecs_boot.state_file.parent
    state_dir.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(state_dir)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise NotCovered(f"mount not permitted here: {out.stderr.strip()[:120]}")
    ctx.cleanups.append(lambda: subprocess.run(["umount", "-l", str(state_dir)],
                                               capture_output=True))
    ctx.ecs_boot.state_file.write_text(json.dumps(PREVIOUS_STATE))
    try:
        (state_dir / "filler").write_bytes(b"x" * 64 * 1024)
    except OSError:
        pass  # full: what we wanted
    ctx.prewrite_old()
    ctx.write_config()
    proc = ctx.spawn()
    wait_for(lambda: ecs_config_kind(ctx) == "complete" or proc.poll() is not None,
             timeout=30, what="ecs.config written")
    ctx.start_agent()
    wait_for(lambda: ctx.completions() or proc.poll() is not None, timeout=40,
             what="the launch hook")
    problems = []
    if ctx.state() != PREVIOUS_STATE:
        problems.append("the previous state.json changed")
    temps = [p.name for p in state_dir.glob(".state.json.tmp.*")]
    if temps:
        problems.append(f"temp files left in the full directory: {temps}")
    done = _accepted_completions(ctx, "autoscaling:EC2_INSTANCE_LAUNCHING")
    alive = proc.poll() is None
    ctx.got = (f"in_service (hook {done[0][0]}, run {'alive' if alive else 'exited'}, "
               "state not persisted)" if done == [("CONTINUE", "api")] and alive
               else f"launch completions {done}, run exit {proc.poll()}")
    return problems


# --- the rows ---------------------------------------------------------------------------------


# --- operator hooks ([hooks], issue 25): a hook that hangs, fails, or dies with ecs-boot -------

HOOK_SCRIPT = """#!/bin/sh
echo "$ECS_BOOT_ATTEMPT" >> "$1/attempts"
case "$2" in
  hang) echo $$ > "$1/pid"; sleep 300 ;;
  hang-first) if [ "$ECS_BOOT_ATTEMPT" = 1 ]; then echo $$ > "$1/pid"; sleep 300; fi ;;
  fail) echo "cannot deregister from the load balancer" >&2; exit 3 ;;
esac
"""


def _pre_drain(ctx, mode: str, timeout: str = "30s") -> Path:
    out = ctx.tmp_path / "hook-out"
    out.mkdir(exist_ok=True)
    script = ctx.tmp_path / "hook.sh"
    script.write_text(HOOK_SCRIPT)
    ctx.configure(**{"hooks.pre_drain": {"command": ["/bin/sh", str(script), str(out), mode],
                                         "timeout": timeout}})
    ctx.cleanups.append(lambda: _kill_hook_group(out))
    return out


def _kill_hook_group(out: Path) -> None:
    try:
        os.killpg(int((out / "pid").read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _pre_drain_record(ctx) -> dict:
    return next((h for h in (ctx.state() or {}).get("handlers", []) if h["hook"] == "pre_drain"),
                {})


def _drained_once(ctx) -> list[str]:
    problems = []
    if len(ctx.client_calls("UpdateContainerInstancesState")) != 1:
        problems.append("DRAINING not set exactly once: the drain did not go on")
    if [c["result"] for c in ctx.completions(TERMINATING)] != ["CONTINUE"]:
        problems.append(f"terminate completions {ctx.completions(TERMINATING)}")
    return problems


def hook_hangs(ctx):
    """pre_drain never returns: killed (its whole group) at its timeout, reported, and the
    drain goes on."""
    out = _pre_drain(ctx, "hang", timeout="2s")
    proc = ctx.boot(stop_delay=0.5)
    ctx.settle(proc)
    ctx.scale_in()
    ctx.settle(proc, outcomes=("terminated",))
    problems = _drained_once(ctx)
    rec = _pre_drain_record(ctx)
    if rec.get("result") != "timeout":
        problems.append(f"pre_drain recorded as {rec}")
    pid = int((out / "pid").read_text())
    if Path(f"/proc/{pid}").exists():
        problems.append("the hook's process survived its timeout")
    return problems


def hook_fails(ctx):
    """pre_drain exits 3: reported (state, warning), and the drain goes on."""
    _pre_drain(ctx, "fail")
    proc = ctx.boot(stop_delay=0.5)
    ctx.settle(proc)
    ctx.scale_in()
    ctx.settle(proc, outcomes=("terminated",))
    problems = _drained_once(ctx)
    rec = _pre_drain_record(ctx)
    if (rec.get("result"), rec.get("exit_code")) != ("failed", 3):
        problems.append(f"pre_drain recorded as {rec}")
    if "load balancer" not in rec.get("output", ""):
        problems.append("the hook's output is not in the state")
    if not any("pre_drain" in w for w in (ctx.state() or {}).get("warnings", [])):
        problems.append("no warning for the failed hook")
    return problems


def hook_cut_by_a_crash(ctx):
    """SIGKILL while pre_drain runs, restart: it runs again as attempt 2 (at least once), the
    drain then completes once."""
    out = _pre_drain(ctx, "hang-first")
    proc = ctx.boot(stop_delay=0.5)
    ctx.settle(proc)
    ctx.scale_in()
    ctx.kill_when(proc, lambda s: any(h["hook"] == "pre_drain" for h in s.get("handlers", []))
                  and (out / "pid").exists())
    _kill_hook_group(out)  # systemd would kill the unit's cgroup with it
    again = ctx.spawn()
    ctx.settle(again, outcomes=("terminated",))
    problems = _drained_once(ctx)
    attempts = (out / "attempts").read_text().split()
    if attempts != ["1", "2"]:
        problems.append(f"attempts {attempts}")
    return problems

FAULTS = [
    Fault("In flight: SIGKILL while CompleteLifecycleAction CONTINUE is answered, restart",
          "launch-hook", "in_service", inflight_continue),
    Fault("In flight: SIGKILL while the CONTINUE is lost before Auto Scaling, restart",
          "launch-hook", "in_service", lost_continue),
    Fault("ASG: CompleteLifecycleAction answered after 12 s (acted at once)", "launch-hook",
          "in_service", slow_completion_answer),
    Fault("In flight: SIGKILL while the ABANDON is answered, restart", "launch-hook",
          "ABANDON: AccessDenied", inflight_abandon, before_write=True),
    Fault("In flight: SIGKILL while UpdateContainerInstancesState DRAINING is answered, "
          "restart", "drain", "terminated: CONTINUE", inflight_draining),
    Fault("In flight: SIGKILL while the credentials GetObject is answered, restart",
          "credentials", "in_service", inflight_credentials),
    Fault("Write: SIGKILL as ecs.config's new file is opened, restart", "ecs-config-write",
          "in_service", paused_write("open", "ecs.config")),
    Fault("Write: SIGKILL between ecs.config's write and its rename, restart",
          "ecs-config-write", "in_service", paused_write("rename", "ecs.config")),
    Fault("Write: SIGKILL as state.json's new file is opened (4th write), restart", "state",
          "in_service", paused_write("open", "state.json", nth=4)),
    Fault("Trace: ecs.config written temp → fsync → rename → fsync(dir)", "ecs-config-write",
          "in_service", traced_atomic_write("ecs.config")),
    Fault("Trace: state.json written temp → rename, its durable writes → fsync → fsync(dir)",
          "state",
          "in_service", traced_atomic_write("state.json")),
    Fault("Power loss in service (unsynced data dropped), restart", "state", "in_service",
          power_loss(in_flight=False)),
    Fault("Power loss while the CONTINUE is in flight (unsynced data dropped), restart",
          "launch-hook", "in_service", power_loss(in_flight=True)),
    Fault("Fragment: refused (tries to unlock keys)", "config-fragment",
          "ABANDON: ecs.locked", fragment(b"[ecs]\nlocked = []\n"), world=FRAGMENT_WORLD,
          before_write=True),
    Fault("Fragment: unreachable (S3 500 on every read)", "config-fragment",
          f"ABANDON: {FRAGMENT_KEY}", fragment(b"[drain]\ndeadline = \"5m\"\n", {
              "service": "s3", "action": "GetObject", "status": 500,
              "code": "InternalError", "message": "injected"}),
          world=FRAGMENT_WORLD, before_write=True),
    Fault("Fragment: outside [trust] fragment_prefixes", "config-fragment",
          f"ABANDON: {OUTSIDE_KEY}", fragment_outside_trust,
          world={"tags": {"ecs-boot:config": f"s3://demo-boot-config/{OUTSIDE_KEY}"}},
          before_write=True),
    Fault("Fragment: malformed TOML", "config-fragment", f"ABANDON: {FRAGMENT_KEY}",
          fragment(b"[ecs\ncluster = "), world=FRAGMENT_WORLD, before_write=True),
    Fault("Tag: ecs-boot:setting:ECS_CONTAINER_STOP_TIMEOUT=99999999999999999999h", "tags",
          "ABANDON: ecs-boot:setting:ECS_CONTAINER_STOP_TIMEOUT", tag_overflow,
          world={"tags": {"ecs-boot:setting:ECS_CONTAINER_STOP_TIMEOUT":
                          "99999999999999999999h"}}, before_write=True),
    Fault("Oversized: 8 MiB IMDS identity document", "identity",
          "failed, hook left to DefaultResult: limit", imds_oversized_document,
          before_write=True),
    Fault("Oversized: 64 MiB S3 credentials with no Content-Length", "credentials",
          "ABANDON: limit", s3_no_content_length, before_write=True),
    Fault("Oversized: 8 MiB introspection /v1/tasks while draining", "drain",
          "terminated: CONTINUE", introspection_oversized_tasks),
    Fault("Signal: SIGHUP twice during the boot", "registration", "in_service",
          sighup_during_boot),
    Fault("Disk: /var/lib/ecs-boot full (ENOSPC)", "state", "in_service", state_dir_full),
    Fault("Hook: pre_drain hangs past its 2 s timeout", "hook:pre_drain",
          "terminated: CONTINUE", hook_hangs),
    Fault("Hook: pre_drain fails (exit 3)", "hook:pre_drain", "terminated: CONTINUE",
          hook_fails),
    Fault("Hook: SIGKILL while pre_drain runs, restart", "hook:pre_drain",
          "terminated: CONTINUE", hook_cut_by_a_crash),
]
