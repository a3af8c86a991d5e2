"""Extension points (issue 25) with the real binary: `[hooks]` commands at each lifecycle step,
with their environment, at least once across a crash and never again once finished, killed at
their timeout; `[[bootstrap]]` containers run to completion before the gate opens, and an
essential one that fails abandons the launch with its exit code.

Each hook is one script that records what it was given: its `ECS_BOOT_*` environment, a copy of
ecs-boot's state at the moment it runs (which shows the step it ran at), and a line in `runs`."""
import json
import os
import signal
import uuid

import pytest

from harness.procs import free_port, wait_for
from lifecycle_helpers import (boot_config, client_calls, spawn_run, start_instance, stop,
                               wait_state)
from test_containers import busybox_image, docker  # noqa: F401 (fixture)

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"

HOOK = r"""#!/bin/sh
out="$1"; state="$2"; mode="$3"
tag="$ECS_BOOT_HOOK.$ECS_BOOT_ATTEMPT"
env | grep -v '^PWD=\|^SHLVL=\|^_=' | sort > "$out/$tag.env"
cp "$state" "$out/$tag.state.json" 2>/dev/null
echo "$tag" >> "$out/runs"
echo "hook $ECS_BOOT_HOOK says hello"
case "$mode" in
  hang) echo $$ > "$out/$ECS_BOOT_HOOK.pid"; sleep 300 ;;
  hang-first) if [ "$ECS_BOOT_ATTEMPT" = 1 ]; then echo $$ > "$out/$ECS_BOOT_HOOK.pid"; sleep 300; fi ;;
  fail) echo "cannot deregister" >&2; exit 3 ;;
esac
exit 0
"""


@pytest.fixture
def hook_dir(tmp_path):
    out = tmp_path / "hook-out"
    out.mkdir()
    script = tmp_path / "hook.sh"
    script.write_text(HOOK)
    yield out, script
    # A hook left sleeping by a killed ecs-boot (systemd would kill its cgroup) goes too.
    for pid_file in out.glob("*.pid"):
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def hooks_config(hook_dir, ecs_boot, modes: dict, timeout="30s") -> str:
    out, script = hook_dir
    text = ""
    for step, mode in modes.items():
        argv = json.dumps(["/bin/sh", str(script), str(out), str(ecs_boot.state_file), mode])
        text += f'[hooks.{step}]\ncommand = {argv}\ntimeout = "{timeout}"\n'
    return text


def env_of(out, tag) -> dict:
    lines = (out / f"{tag}.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def runs(out) -> list[str]:
    path = out / "runs"
    return path.read_text().split() if path.exists() else []


def state_at(out, tag) -> dict:
    return json.loads((out / f"{tag}.state.json").read_text())


def scale_in(moto, world):
    moto.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=world.instance_id, ShouldDecrementDesiredCapacity=True)


def completions(moto, world, transition):
    return [c for c in moto.completions()
            if c["instance"] == world.instance_id and c["transition"] == transition]


def expected_env(world, hook, attempt, transition, cause, stage) -> dict:
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ECS_BOOT_HOOK": hook, "ECS_BOOT_ATTEMPT": str(attempt),
        "ECS_BOOT_INSTANCE_ID": world.instance_id, "ECS_BOOT_CLUSTER": world.cluster,
        "ECS_BOOT_TRANSITION": transition, "ECS_BOOT_CAUSE": cause, "ECS_BOOT_STAGE": stage,
    }


# --- hooks -------------------------------------------------------------------------------------

def test_each_hook_runs_once_at_its_step_with_its_environment(moto, world, ecs_boot, fake_agent,
                                                             hook_dir):
    out, _ = hook_dir
    extra = hooks_config(hook_dir, ecs_boot, {"in_service": "ok", "pre_drain": "ok",
                                              "post_drain": "ok", "on_failure": "ok"})
    proc, agent = start_instance(ecs_boot, fake_agent, extra, stop_delay=1.0)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    wait_for(lambda: "in_service.1" in runs(out), timeout=20, what="in_service hook")
    assert env_of(out, "in_service.1") == expected_env(
        world, "in_service", 1, "launch", "launched", "in_service")
    # After the launch action was completed, never before.
    at = state_at(out, "in_service.1")
    assert [h["transition"] for h in at.get("hooks", [])] == ["launch"], at.get("hooks")

    agent.add_tasks("web", kind="service", count=2)
    scale_in(moto, world)
    wait_for(lambda: completions(moto, world, TERMINATING), timeout=40, what="terminate hook")
    drain_env = dict(transition="terminate", cause="lifecycle", stage="draining")
    assert env_of(out, "pre_drain.1") == expected_env(world, "pre_drain", 1, **drain_env)
    assert env_of(out, "post_drain.1") == expected_env(world, "post_drain", 1, **drain_env)
    # pre_drain: before the drain record (and DRAINING); post_drain: tasks gone, terminate
    # action not yet completed.
    assert state_at(out, "pre_drain.1").get("drain") is None
    post = state_at(out, "post_drain.1")
    assert post["drain"]["state"] == "drained" and post["drain"]["tasks_left"] == 0
    assert [h["transition"] for h in post["hooks"]] == ["launch"]
    assert runs(out) == ["in_service.1", "pre_drain.1", "post_drain.1"]  # no on_failure

    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated")
    by_hook = {h["hook"]: h for h in s["handlers"]}
    assert set(by_hook) == {"in_service", "pre_drain", "post_drain"}
    assert all(h["result"] == "ok" and h["attempt"] == 1 and h["exit_code"] == 0
               for h in by_hook.values()), by_hook
    assert "says hello" in by_hook["pre_drain"]["output"]
    assert any(p["name"] == "hook:pre_drain" and p["status"] == "ok" for p in s["phases"])
    # Its output reached the journal (here: stderr) too.
    assert "hook pre_drain says hello" in proc.log_path.read_text()
    assert stop(proc) == 0


def test_a_hook_cut_by_a_crash_runs_again_as_attempt_2_and_never_after_it_finished(
        moto, world, ecs_boot, fake_agent, hook_dir):
    out, _ = hook_dir
    extra = hooks_config(hook_dir, ecs_boot, {"in_service": "ok", "pre_drain": "hang-first"})
    proc, agent = start_instance(ecs_boot, fake_agent, extra, stop_delay=1.0)
    wait_for(lambda: "in_service.1" in runs(out), timeout=30, what="in_service hook")
    scale_in(moto, world)
    wait_for(lambda: (out / "pre_drain.pid").exists(), timeout=30, what="pre_drain hook")
    # The record says started, not finished, before the hook runs.
    rec = next(h for h in json.loads(ecs_boot.state_file.read_text())["handlers"]
               if h["hook"] == "pre_drain")
    assert rec["attempt"] == 1 and "finished_at" not in rec
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    os.killpg(int((out / "pre_drain.pid").read_text()), signal.SIGKILL)

    again = spawn_run(ecs_boot)
    wait_for(lambda: completions(moto, world, TERMINATING), timeout=60, what="terminate hook")
    assert env_of(out, "pre_drain.2")["ECS_BOOT_ATTEMPT"] == "2"
    # in_service had finished before the crash: the restarted boot did not run it again.
    assert runs(out) == ["in_service.1", "pre_drain.1", "pre_drain.2"]
    assert [c["result"] for c in completions(moto, world, TERMINATING)] == ["CONTINUE"]
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated" and s["pid"] == again.pid)
    pre = next(h for h in s["handlers"] if h["hook"] == "pre_drain")
    assert (pre["attempt"], pre["result"]) == (2, "ok")
    assert stop(again) == 0


def test_a_finished_hook_never_runs_again_after_a_restart(moto, world, ecs_boot, fake_agent,
                                                          hook_dir):
    out, _ = hook_dir
    extra = hooks_config(hook_dir, ecs_boot, {"in_service": "ok"})
    proc, agent = start_instance(ecs_boot, fake_agent, extra)
    wait_for(lambda: "in_service.1" in runs(out), timeout=30, what="in_service hook")
    wait_state(ecs_boot, lambda s: any(h.get("finished_at") for h in s.get("handlers", [])))
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    again = spawn_run(ecs_boot)
    # in_service is decided before the stage is: once it shows, the hook was run or skipped.
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service" and s["pid"] == again.pid,
                   timeout=40)
    assert runs(out) == ["in_service.1"], s.get("handlers")
    assert stop(again) == 0


def test_a_hanging_hook_is_killed_at_its_timeout_and_the_drain_goes_on(
        moto, world, ecs_boot, fake_agent, hook_dir):
    out, _ = hook_dir
    extra = hooks_config(hook_dir, ecs_boot, {"pre_drain": "hang"}, timeout="2s")
    proc, agent = start_instance(ecs_boot, fake_agent, extra, stop_delay=0.5)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    scale_in(moto, world)
    wait_for(lambda: completions(moto, world, TERMINATING), timeout=40, what="terminate hook")
    pid = int((out / "pre_drain.pid").read_text())
    # The whole group is gone: the shell and its sleep.
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=10, what="hook killed")
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated")
    pre = next(h for h in s["handlers"] if h["hook"] == "pre_drain")
    assert pre["result"] == "timeout" and "exit_code" not in pre, pre
    assert any("hook pre_drain" in w and "timeout" in w for w in s["warnings"]), s["warnings"]
    assert len(client_calls(moto, "UpdateContainerInstancesState")) == 1  # the drain went on
    assert [c["result"] for c in completions(moto, world, TERMINATING)] == ["CONTINUE"]
    assert stop(proc) == 0


def test_a_failing_required_pre_drain_stops_the_drain(moto, world, ecs_boot, fake_agent,
                                                       hook_dir):
    out, _ = hook_dir
    extra = hooks_config(hook_dir, ecs_boot, {"pre_drain": "fail"}) + "required = true\n"
    proc, agent = start_instance(ecs_boot, fake_agent, extra)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    scale_in(moto, world)
    assert proc.wait(30) != 0
    assert runs(out) == ["pre_drain.1"]
    assert client_calls(moto, "UpdateContainerInstancesState") == []
    assert completions(moto, world, TERMINATING) == []
    s = json.loads(ecs_boot.state_file.read_text())
    assert "required hook pre_drain exited with code 3" in s["error"]["message"]
    # systemd restarts it: the failed required hook runs again as attempt 2.
    again = spawn_run(ecs_boot)
    wait_for(lambda: "pre_drain.2" in runs(out), timeout=40, what="pre_drain again")
    assert again.wait(30) != 0


def test_on_failure_runs_before_the_abandon(moto, world, ecs_boot, hook_dir):
    out, _ = hook_dir
    extra = hooks_config(hook_dir, ecs_boot, {"on_failure": "ok"})
    # Registration never happens: no agent, a short registration timeout.
    proc, _ = start_instance(ecs_boot, None, extra, agent=False)
    assert proc.wait(60) != 0
    env = env_of(out, "on_failure.1")
    assert env["ECS_BOOT_TRANSITION"] == "launch" and env["ECS_BOOT_STAGE"] == "failed"
    assert env["ECS_BOOT_INSTANCE_ID"] == world.instance_id
    assert "register" in env["ECS_BOOT_CAUSE"].lower(), env["ECS_BOOT_CAUSE"]
    assert "AWS_SECRET_ACCESS_KEY" not in env and "AWS_ENDPOINT_URL" not in env
    assert state_at(out, "on_failure.1").get("hooks") is None  # before the ABANDON
    assert [c["result"] for c in completions(moto, world, LAUNCHING)] == ["ABANDON"]


def test_hooks_are_refused_from_a_fragment(moto, world, ecs_boot, fake_agent, hook_dir):
    """Even a trusted config opening everything it may cannot open hooks."""
    ecs_boot.write_config('[trust]\nfragment_keys = ["hooks"]\n')
    out = ecs_boot.run("check-config", str(ecs_boot.config_path))
    assert out.returncode != 0 and "never be set by a fragment" in out.stderr + out.stdout


# --- bootstrap containers ----------------------------------------------------------------------

def bootstrap_config(image, name, script, essential=True, binds=(), timeout="60s") -> str:
    argv = json.dumps(["/bin/sh", "-c", script])
    return (f'[docker]\nengine_wait = "20s"\n[[bootstrap]]\nname = "{name}"\nimage = "{image}"\n'
            f'pull = "never"\ncommand = {argv}\nbinds = {json.dumps(list(binds))}\n'
            f'essential = {"true" if essential else "false"}\ntimeout = "{timeout}"\n'
            f'env = {{ TOKEN = "s3cr3t-{name}" }}\n')


def no_container_named(name):
    ps = docker("ps", "-a", "--filter", f"name=ecs-boot-bootstrap-{name}", "--format", "{{.ID}}")
    return ps.stdout.strip() == ""


def test_bootstrap_finishes_before_the_gate_opens_and_the_agent_starts(
        moto, world, ecs_boot, fake_agent, busybox_image, tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    prepared.chmod(0o777)
    name = f"prep-{uuid.uuid4().hex[:8]}"
    extra = bootstrap_config(busybox_image, name, "sleep 2; echo prepared; touch /out/done",
                             binds=[f"{prepared}:/out"])
    port = free_port()
    ecs_boot.write_config(boot_config(port, extra))
    proc = spawn_run(ecs_boot)
    # As ecs.service's `ecs-boot gate` does: the agent starts once the ready marker is there.
    marker = ecs_boot.root / "run/ecs-boot/ecs-config.sha256"
    wait_for(lambda: marker.exists() or proc.poll() is not None, timeout=60, what="gate open")
    assert proc.poll() is None, proc.log_path.read_text()[-2000:]
    assert (prepared / "done").exists(), "the gate opened before the bootstrap container finished"
    agent = fake_agent(ecs_boot.ecs_config, port=port,
                       env={"FAKE_ECS_REQUIRE_FILE": str(prepared / "done")})
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service", timeout=60)
    phase = next(p for p in s["phases"] if p["name"] == f"bootstrap:{name}")
    assert phase["status"] == "ok" and phase["detail"] == "exit code 0"
    names = [p["name"] for p in s["phases"]]
    assert names.index("ecs-config-write") < names.index(f"bootstrap:{name}")
    assert no_container_named(name)
    assert stop(proc) == 0


def test_a_failing_essential_bootstrap_abandons_with_its_exit_code(
        moto, world, ecs_boot, busybox_image):
    name = f"fail-{uuid.uuid4().hex[:8]}"
    extra = bootstrap_config(busybox_image, name,
                             'echo "mkfs: /dev/nvme1n1: no such device"; exit 42')
    proc, _ = start_instance(ecs_boot, None, extra, agent=False)
    assert proc.wait(60) != 0
    assert not (ecs_boot.root / "run/ecs-boot/ecs-config.sha256").exists(), "gate opened"
    assert [c["result"] for c in completions(moto, world, LAUNCHING)] == ["ABANDON"]
    s = json.loads(ecs_boot.state_file.read_text())
    assert s["error"]["phase"] == f"bootstrap:{name}"
    message = s["error"]["message"]
    assert "exited with code 42" in message and "no such device" in message, message
    hook = next(h for h in s["hooks"] if h["transition"] == "launch")
    assert "exited with code 42" in hook["cause"]
    log = proc.log_path.read_text()
    assert f"s3cr3t-{name}" not in json.dumps(s) and f"s3cr3t-{name}" not in log
    assert no_container_named(name)


def test_a_failing_optional_bootstrap_is_a_warning(moto, world, ecs_boot, fake_agent,
                                                   busybox_image):
    name = f"opt-{uuid.uuid4().hex[:8]}"
    extra = bootstrap_config(busybox_image, name, "exit 5", essential=False)
    proc, agent = start_instance(ecs_boot, fake_agent, extra)
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service", timeout=60)
    phase = next(p for p in s["phases"] if p["name"] == f"bootstrap:{name}")
    assert phase["status"] == "failed" and "code 5" in phase["detail"]
    assert any(name in w and "not essential" in w for w in s["warnings"])
    assert stop(proc) == 0


def test_a_hanging_bootstrap_is_killed_at_its_timeout(moto, world, ecs_boot, busybox_image):
    name = f"hang-{uuid.uuid4().hex[:8]}"
    extra = bootstrap_config(busybox_image, name, "echo working; sleep 600", timeout="3s")
    proc, _ = start_instance(ecs_boot, None, extra, agent=False)
    assert proc.wait(90) != 0
    s = json.loads(ecs_boot.state_file.read_text())
    assert "timeout of 3s" in s["error"]["message"] and "working" in s["error"]["message"]
    assert [c["result"] for c in completions(moto, world, LAUNCHING)] == ["ABANDON"]
    assert no_container_named(name)
