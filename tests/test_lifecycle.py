"""Launch lifecycle hook (issue 4): CONTINUE once the local ECS agent registered; ABANDON with a
cause when boot fails; exactly one completion across restarts."""
import json
import signal
import time

import pytest

from harness.procs import free_port, wait_for
from lifecycle_helpers import (boot_config, client_calls, spawn_run, start_instance, status, stop,
                               wait_state)


def completions(moto, world, transition="autoscaling:EC2_INSTANCE_LAUNCHING"):
    return [c for c in moto.completions()
            if c["instance"] == world.instance_id and c["transition"] == transition]


def test_continue_after_registration(moto, world, ecs_boot, fake_agent):
    assert moto.lifecycle_state(world.asg, world.instance_id) == "Pending:Wait"
    proc, agent = start_instance(ecs_boot, fake_agent, register_delay=1.0)
    wait_for(lambda: moto.lifecycle_state(world.asg, world.instance_id) == "InService",
             timeout=30, what="instance InService")
    done = completions(moto, world)
    assert [(c["result"], c["source"]) for c in done] == [("CONTINUE", "api")]

    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    arn = agent.state()["container_instance_arn"]
    assert s["registration"]["container_instance_arn"] == arn
    hook = next(h for h in s["hooks"] if h["transition"] == "launch")
    assert hook["result"] == "CONTINUE" and hook["hook"] == world.launch_hook
    assert hook["latency_ms"] < 1500, hook
    # Registration was judged locally: no ECS control-plane call by ecs-boot but the one that
    # marks the node ready for placement (tests/test_readiness.py).
    assert [c["action"] for c in moto.calls(source="client") if c["service"] == "ecs"] == [
        "PutAttributes"]
    assert status(ecs_boot)["health"] == "healthy"
    assert stop(proc) == 0


def test_never_registers_heartbeats_then_abandons(moto, world, ecs_boot, fake_agent):
    proc, _ = start_instance(
        ecs_boot, fake_agent, never_register=True,
        extra_config='[lifecycle]\nheartbeat_interval = "1s"\n')
    # registration_timeout is overridden below by a short one
    proc.kill()
    ecs_boot.write_config(ecs_boot.config_path.read_text().replace(
        'registration_timeout = "20s"', 'registration_timeout = "4s"'))
    proc = spawn_run(ecs_boot)
    assert proc.wait(30) == 1
    assert [c["result"] for c in completions(moto, world)] == ["ABANDON"]
    assert len(client_calls(moto, "RecordLifecycleActionHeartbeat")) >= 2
    assert moto.lifecycle_state(world.asg, world.instance_id) == "Terminated"
    s = status(ecs_boot)
    assert s["health"] == "failed"
    assert "did not register" in s["state"]["error"]["message"]
    assert "ecs" in s["state"]["error"]["hint"]


def test_wrong_cluster_abandons(moto, world, ecs_boot, fake_agent):
    moto.client("ecs").create_cluster(clusterName="someone-elses")
    proc, _ = start_instance(ecs_boot, fake_agent, cluster_override="someone-elses")
    assert proc.wait(30) == 1
    assert [c["result"] for c in completions(moto, world)] == ["ABANDON"]
    assert "someone-elses" in status(ecs_boot)["state"]["error"]["message"]


def test_bad_credentials_abandon_before_ecs_starts(moto, world, ecs_boot, fake_agent):
    bucket, key = world.registry_auth[len("s3://"):].split("/", 1)
    moto.client("s3").put_object(Bucket=bucket, Key=key, Body=b'{"auths": ')
    proc, agent = start_instance(ecs_boot, fake_agent)
    assert proc.wait(30) == 1
    assert agent is None and not ecs_boot.ecs_config.exists()
    done = completions(moto, world)
    assert [c["result"] for c in done] == ["ABANDON"]
    s = status(ecs_boot)["state"]
    launch = next(h for h in s["hooks"] if h["transition"] == "launch")
    assert "not valid JSON" in launch["cause"] and world.registry_auth in launch["cause"]
    assert ecs_boot.run("gate").returncode == 1


def test_restart_after_completion_does_not_complete_again(moto, world, ecs_boot, fake_agent):
    proc, _ = start_instance(ecs_boot, fake_agent)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    again = spawn_run(ecs_boot)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service" and s["pid"] == again.pid)
    assert len(client_calls(moto, "CompleteLifecycleAction")) == 1
    assert len(completions(moto, world)) == 1
    assert stop(again) == 0


def test_action_already_finished_counts_as_done(moto, world, ecs_boot, fake_agent):
    # Someone (an operator, a timeout) completed the action first: AWS answers "No active
    # Lifecycle Action found", which ecs-boot records as done rather than failing the boot.
    moto.set_lifecycle_state(world.asg, world.instance_id, "InService")
    proc, _ = start_instance(ecs_boot, fake_agent)
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    hook = next(h for h in s["hooks"] if h["transition"] == "launch")
    assert hook["already_done"] is True
    assert stop(proc) == 0


@pytest.mark.world(launch_hook=False, terminate_hook=False)
def test_no_hook_is_skipped_and_said(moto, world, ecs_boot, fake_agent):
    proc, _ = start_instance(ecs_boot, fake_agent)
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    assert [h["result"] for h in s["hooks"]] == ["skipped"]
    assert "no launch lifecycle hook" in s["hooks"][0]["cause"]
    assert not client_calls(moto, "CompleteLifecycleAction")
    assert "skipped" in ecs_boot.run("status").stdout
    assert stop(proc) == 0


def test_warm_pool_keeps_the_gate_closed_then_the_same_process_goes_in_service(
        moto, world, imds, ecs_boot, fake_agent):
    """A warming instance's ECS agent must never register (amazon-ecs-agent#3000): ecs-boot
    completes the pool's launch hook but keeps the gate closed, so ecs.service cannot start.
    Warmed:Running goes InService without a reboot: the same process opens the gate and
    completes the launch hook once the agent has registered."""
    moto.set_lifecycle_state(world.asg, world.instance_id, "Warmed:Pending:Wait")
    imds.set_target_lifecycle_state("Warmed:Running")
    port = free_port()
    ecs_boot.write_config(boot_config(port))
    proc = spawn_run(ecs_boot)
    wait_for(lambda: moto.lifecycle_state(world.asg, world.instance_id) == "Warmed:Stopped",
             timeout=20, what="warm pool hook completed")
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "warmed")
    assert [h["transition"] for h in s["hooks"]] == ["launch-warmed"]
    assert ecs_boot.ecs_config.exists(), "ecs.config is prepared while warmed"
    assert ecs_boot.run("gate").returncode == 1, "the gate let ecs.service start while warmed"
    assert status(ecs_boot)["health"] == "healthy"
    # Leaves the pool for service, without a reboot.
    moto.set_lifecycle_state(world.asg, world.instance_id, "Pending:Wait")
    imds.set_target_lifecycle_state("InService")
    wait_for(lambda: ecs_boot.run("gate").returncode == 0, timeout=20, what="the gate to open")
    fake_agent(ecs_boot.ecs_config, port=port)  # ecs.service starts: the agent registers
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    assert [h["transition"] for h in s["hooks"]] == ["launch-warmed", "launch"]
    assert moto.lifecycle_state(world.asg, world.instance_id) == "InService"
    assert proc.poll() is None and s["pid"] == proc.pid, "not the same process"
    assert stop(proc) == 0


def test_fake_agent_with_warm_pools_check_exits_5_on_a_404(moto, world, imds, ecs_boot,
                                                          fake_agent, tmp_path):
    """Why ecs-boot never sets ECS_WARM_POOLS_CHECK: the agent exits terminally when the
    target-lifecycle-state path answers 404 (no group yet, or after a stop/start)."""
    cfg = tmp_path / "ecs.config"
    cfg.write_text(f"ECS_CLUSTER={world.cluster}\nECS_WARM_POOLS_CHECK=true\n")
    imds.set_target_lifecycle_state(None)
    agent = fake_agent(cfg)
    assert agent.proc.wait(20) == 5


# --- a crash while CompleteLifecycleAction was in flight (trust-boundary issue) ------------------


def seed_intent(ecs_boot, world, result="CONTINUE"):
    """state.json as a run of this boot leaves it when killed after sending its completion and
    before recording the answer: an intent, no completion."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ecs_boot.state_file.parent.mkdir(parents=True, exist_ok=True)
    ecs_boot.state_file.write_text(json.dumps({
        "schema": 1, "version": "0", "commit": "", "pid": 1, "started_at": now,
        "updated_at": now, "outcome": "booting",
        "hook_intents": [{"transition": "launch", "hook": world.launch_hook, "result": result,
                          "at": now}]}))


def test_restart_after_an_effective_completion_asks_auto_scaling_and_never_completes_again(
        moto, world, ecs_boot, fake_agent):
    # The first CONTINUE took effect: the group has the instance InService.
    moto.set_lifecycle_state(world.asg, world.instance_id, "InService")
    seed_intent(ecs_boot, world)
    proc, _ = start_instance(ecs_boot, fake_agent)
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    [rec] = [h for h in s["hooks"] if h["transition"] == "launch"]
    assert rec["result"] == "CONTINUE" and rec["already_done"], rec
    assert "InService" in rec["cause"], rec
    assert not s.get("hook_intents"), s
    assert client_calls(moto, "CompleteLifecycleAction") == [], "completed a second time"
    asked = client_calls(moto, "DescribeAutoScalingInstances")
    assert asked, "never asked Auto Scaling what the first completion did"
    stop(proc)


def test_restart_after_a_lost_completion_completes_once(moto, world, ecs_boot, fake_agent):
    # The first CONTINUE never arrived: the instance still waits in Pending:Wait.
    assert moto.lifecycle_state(world.asg, world.instance_id) == "Pending:Wait"
    seed_intent(ecs_boot, world)
    proc, _ = start_instance(ecs_boot, fake_agent)
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    [rec] = [h for h in s["hooks"] if h["transition"] == "launch"]
    assert rec["result"] == "CONTINUE" and not rec["already_done"], rec
    assert len(client_calls(moto, "CompleteLifecycleAction")) == 1
    assert moto.lifecycle_state(world.asg, world.instance_id) == "InService"
    stop(proc)
