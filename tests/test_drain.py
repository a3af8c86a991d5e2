"""Termination (issue 5): drain the instance's tasks, then complete the terminate hook; spot
notices too; resume after a restart; never set DRAINING twice."""
import datetime
import json
import signal

import pytest

from harness.procs import wait_for
from lifecycle_helpers import spawn_run, client_calls, start_instance, status, stop, wait_state
from test_containers import LOCAL_TAG, SLEEP, busybox_image, docker  # noqa: F401 (fixture)

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


def in_service(moto, world, ecs_boot, fake_agent, extra_config="", **agent_opts):
    proc, agent = start_instance(ecs_boot, fake_agent, extra_config, **agent_opts)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    return proc, agent


def scale_in(moto, world):
    moto.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=world.instance_id, ShouldDecrementDesiredCapacity=True)
    assert moto.lifecycle_state(world.asg, world.instance_id) == "Terminating:Wait"


def terminate_completions(moto, world):
    return [c for c in moto.completions()
            if c["instance"] == world.instance_id and c["transition"] == TERMINATING]


def ci_status(moto, world, agent):
    arn = agent.state()["container_instance_arn"]
    out = moto.client("ecs").describe_container_instances(cluster=world.cluster,
                                                          containerInstances=[arn])
    return out["containerInstances"][0]["status"]


def test_scale_in_drains_then_continues(moto, world, ecs_boot, fake_agent):
    proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=1.5)
    agent.add_tasks("web", kind="service", count=3)
    scale_in(moto, world)
    wait_for(lambda: terminate_completions(moto, world), timeout=30, what="terminate hook")
    assert [c["result"] for c in terminate_completions(moto, world)] == ["CONTINUE"]
    assert moto.lifecycle_state(world.asg, world.instance_id) == "Terminated"
    assert ci_status(moto, world, agent) == "DRAINING"
    # Every task was gone before the hook completed: none cut.
    assert all(t["KnownStatus"] == "STOPPED" for t in agent.tasks())
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated")
    assert s["drain"]["state"] == "drained" and s["drain"]["trigger"] == "lifecycle:Terminated"
    assert s["drain"]["tasks_left"] == 0
    hook = next(h for h in s["hooks"] if h["transition"] == "terminate")
    assert hook["latency_ms"] < 1000, hook
    assert len(client_calls(moto, "UpdateContainerInstancesState")) == 1
    assert status(ecs_boot)["health"] == "healthy"
    assert stop(proc) == 0


def test_stuck_task_reaches_the_deadline_with_the_configured_result(moto, world, ecs_boot,
                                                                     fake_agent):
    proc, agent = in_service(
        moto, world, ecs_boot, fake_agent, stop_delay=None,
        extra_config='deadline = "3s"\nresult_on_deadline = "ABANDON"\n'
                     'standalone_grace = "1h"\n')
    agent.add_tasks("stuck", kind="service", count=1)
    scale_in(moto, world)
    wait_for(lambda: terminate_completions(moto, world), timeout=30, what="terminate hook")
    assert [c["result"] for c in terminate_completions(moto, world)] == ["ABANDON"]
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated")
    assert s["drain"]["state"] == "deadline" and s["drain"]["tasks_left"] == 1
    hook = next(h for h in s["hooks"] if h["transition"] == "terminate")
    assert "deadline" in hook["cause"]
    assert stop(proc) == 0


def test_spot_notice_drains_and_completes_only_the_real_termination(moto, world, imds,
                                                                    ecs_boot, fake_agent):
    """A spot notice drains at once; the terminate hook is completed only when Auto Scaling
    terminates the instance (an action exists), never on the notice alone."""
    proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=0.5)
    agent.add_tasks("web", kind="service", count=2)
    when = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2))
    imds.set_spot_action("terminate", when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "drained", timeout=30)
    assert s["drain"]["trigger"] == "spot:terminate"
    assert ci_status(moto, world, agent) == "DRAINING"
    deadline = datetime.datetime.fromisoformat(s["drain"]["deadline_at"].replace("Z", "+00:00"))
    assert deadline <= when, "a spot notice caps the drain deadline at its time"
    assert terminate_completions(moto, world) == [], "completed a terminate action that did not exist"
    moto.reset_calls()
    scale_in(moto, world)
    wait_for(lambda: terminate_completions(moto, world), timeout=30, what="terminate hook")
    assert [c["result"] for c in terminate_completions(moto, world)] == ["CONTINUE"]
    assert client_calls(moto, "UpdateContainerInstancesState") == [], "set DRAINING twice"
    assert stop(proc) == 0


LIFECYCLE_PATH = "/latest/meta-data/autoscaling/target-lifecycle-state"
SPOT_PATH = "/latest/meta-data/spot/instance-action"


@pytest.mark.parametrize("life_cycle", ["on-demand", "spot"])
def test_in_service_the_watch_reads_the_spot_notice_only_where_one_can_come(
        moto, world, imds, ecs_boot, fake_agent, life_cycle):
    """Idle cost (issue 23): target-lifecycle-state is read every third spot poll (the terminate
    hook waits for us); the spot notice every poll, and only on a spot instance."""
    imds.life_cycle = life_cycle
    proc, agent = in_service(moto, world, ecs_boot, fake_agent)
    imds.reset_log()

    def reads(path):
        return sum(1 for r in list(imds.requests) if r["path"] == path)

    wait_for(lambda: reads(LIFECYCLE_PATH) >= 3, timeout=30, what="three lifecycle-state reads")
    lifecycle, spot = reads(LIFECYCLE_PATH), reads(SPOT_PATH)
    if life_cycle == "on-demand":
        assert spot == 0, "read the spot notice of an on-demand instance"
    else:
        assert spot >= 3 * (lifecycle - 1), (lifecycle, spot)
    # Reading less never means missing the termination.
    scale_in(moto, world)
    wait_for(lambda: terminate_completions(moto, world), timeout=30, what="terminate hook")
    assert [c["result"] for c in terminate_completions(moto, world)] == ["CONTINUE"]
    assert stop(proc) == 0


def test_operator_drain_keeps_watching_and_a_later_termination_completes_at_once(
        moto, world, ecs_boot, fake_agent):
    """`ecs-boot drain` without a termination: the instance stays drained (not "terminated"),
    keeps watching, and the real scale-in later completes the hook without waiting out its
    heartbeat timeout."""
    proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=0.2)
    agent.add_tasks("web", kind="service", count=1)
    assert ecs_boot.run("drain", "--wait", "--timeout", "30s", timeout=40).returncode == 0
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "drained")
    assert not [h for h in s.get("hooks", []) if h["transition"] == "terminate"], s["hooks"]
    assert terminate_completions(moto, world) == []
    moto.reset_calls()
    scale_in(moto, world)
    wait_for(lambda: terminate_completions(moto, world), timeout=30, what="terminate hook")
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated")
    hook = next(h for h in s["hooks"] if h["transition"] == "terminate")
    assert hook["result"] == "CONTINUE" and not hook["already_done"], hook
    assert stop(proc) == 0


def test_undrain_returns_a_drained_instance_to_service(moto, world, ecs_boot, fake_agent):
    proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=0.2)
    assert ecs_boot.run("drain", "--wait", "--timeout", "30s", timeout=40).returncode == 0
    assert ci_status(moto, world, agent) == "DRAINING"
    out = ecs_boot.run("undrain")
    assert out.returncode == 0, out.stderr
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service" and not s.get("drain"))
    assert ci_status(moto, world, agent) == "ACTIVE"
    # In service again: a scale-in drains and completes as usual.
    scale_in(moto, world)
    wait_for(lambda: terminate_completions(moto, world), timeout=30, what="terminate hook")
    assert stop(proc) == 0


def test_termination_makes_two_aws_calls(moto, world, ecs_boot, fake_agent):
    """The terminate hook is remembered from the launch's discovery: termination needs no
    DescribeLifecycleHooks, nor a status read before DRAINING (nothing returns a terminating
    instance to ACTIVE): UpdateContainerInstancesState and CompleteLifecycleAction, heartbeats
    apart."""
    proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=0.2)
    moto.reset_calls()
    scale_in(moto, world)
    wait_for(lambda: terminate_completions(moto, world), timeout=30, what="terminate hook")
    calls = [c["action"] for c in moto.calls(source="client")
             if c["action"] != "RecordLifecycleActionHeartbeat"]
    # The drain's metrics (one PutMetricData, `[metrics] enabled`) are telemetry, counted apart:
    # the two calls are what a termination needs from the control plane.
    assert calls.count("PutMetricData") <= 1, calls
    assert sorted(c for c in calls if c != "PutMetricData") == [
        "CompleteLifecycleAction", "UpdateContainerInstancesState"], calls
    assert stop(proc) == 0


def test_already_draining_is_not_read_nor_fought(moto, world, ecs_boot, fake_agent):
    """Someone drained the instance before its termination: DRAINING is set once more (a no-op
    at ECS, cheaper than reading it first), never undone, and the drain completes."""
    proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=0.5)
    agent.add_tasks("web", kind="service", count=1)
    ci = agent.state()["container_instance_arn"]
    moto.client("ecs").update_container_instances_state(
        cluster=world.cluster, containerInstances=[ci], status="DRAINING")
    scale_in(moto, world)
    wait_for(lambda: terminate_completions(moto, world), timeout=30, what="terminate hook")
    updates = client_calls(moto, "UpdateContainerInstancesState")
    assert [c["params"].get("status") for c in updates] == ["DRAINING"], updates
    assert client_calls(moto, "DescribeContainerInstances") == []
    assert ci_status(moto, world, agent) == "DRAINING"
    assert stop(proc) == 0


def test_standalone_task_stopped_after_grace(moto, world, ecs_boot, fake_agent):
    proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=0.5,
                             extra_config='standalone_grace = "1s"\n')
    agent.add_tasks("web", kind="service", count=1)
    agent.add_tasks("batch", kind="standalone", count=1)
    scale_in(moto, world)
    wait_for(lambda: terminate_completions(moto, world), timeout=30, what="terminate hook")
    assert [c["result"] for c in terminate_completions(moto, world)] == ["CONTINUE"]
    stopped = client_calls(moto, "StopTask")
    assert len(stopped) == 1
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated")
    assert len(s["drain"]["standalone_stopped"]) == 1
    assert stop(proc) == 0


def test_restart_mid_drain_resumes_with_one_completion(moto, world, ecs_boot, fake_agent):
    proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=4)
    agent.add_tasks("web", kind="service", count=2)
    scale_in(moto, world)
    wait_state(ecs_boot, lambda s: (s.get("drain") or {}).get("tasks_left") == 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    again = spawn_run(ecs_boot)
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated" and s["pid"] == again.pid,
                   timeout=40)
    assert [c["result"] for c in terminate_completions(moto, world)] == ["CONTINUE"]
    assert len(client_calls(moto, "UpdateContainerInstancesState")) == 1
    assert len([c for c in client_calls(moto, "CompleteLifecycleAction")]) == 2  # launch + terminate
    assert s["drain"]["state"] == "drained"
    assert stop(again) == 0


def test_operator_drain_command_waits_for_the_drain(moto, world, ecs_boot, fake_agent):
    proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=1.0)
    agent.add_tasks("web", kind="service", count=2)
    out = ecs_boot.run("drain", "--wait", "--timeout", "30s", timeout=40)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "drain finished: drained" in out.stdout
    assert ci_status(moto, world, agent) == "DRAINING"
    assert all(t["KnownStatus"] == "STOPPED" for t in agent.tasks())
    s = status(ecs_boot)["state"]
    assert s["drain"]["trigger"] == "manual"
    assert stop(proc) == 0


def test_operator_hook_command_abandons_a_broken_instance(moto, world, ecs_boot):
    # No ecs-boot run at all (say, it crash-loops): the operator abandons by hand over SSM.
    out = ecs_boot.run("hook", "abandon")
    assert out.returncode == 0, out.stderr
    assert "ABANDON sent" in out.stdout
    assert moto.lifecycle_state(world.asg, world.instance_id) == "Terminated"
    again = ecs_boot.run("hook", "abandon")
    assert "no active lifecycle action" in again.stdout


def test_system_containers_stop_after_the_tasks(moto, world, ecs_boot, fake_agent, busybox_image):
    name = f"drain-logs-{world.instance_id[-6:]}"
    container = (f'[[container]]\nname = "{name}"\nimage = "{LOCAL_TAG}"\npull = "never"\n'
                 f'command = {SLEEP}\n[docker]\nengine_wait = "20s"\n')
    try:
        proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=1.5,
                                 extra_config=container)
        assert docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
        agent.add_tasks("web", kind="service", count=1)
        scale_in(moto, world)
        s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated", timeout=40)
        state = json.loads(docker("inspect", name).stdout)[0]["State"]
        assert state["Running"] is False, "system containers are stopped at the end of a drain"
        finished = datetime.datetime.fromisoformat(state["FinishedAt"][:26] + "+00:00")
        drained = datetime.datetime.fromisoformat(s["drain"]["drained_at"][:26] + "+00:00")
        assert finished >= drained, "the log shipper outlived the last task"
        assert [c["state"] for c in s["containers"]] == ["stopped"], "status shows them stopped"
        assert stop(proc) == 0
    finally:
        docker("rm", "-f", name, check=False)


MANAGED = "ecs-managed-draining-termination-hook"


def add_managed_draining_hook(moto, world):
    moto.client("autoscaling").put_lifecycle_hook(
        LifecycleHookName=MANAGED, AutoScalingGroupName=world.asg,
        LifecycleTransition=TERMINATING, HeartbeatTimeout=3600, DefaultResult="CONTINUE")


def test_with_ecs_managed_draining_ecs_sets_draining_and_ecs_boot_never_completes_its_hook(
        moto, world, ecs_boot, fake_agent):
    """ECS managed draining (a capacity provider's hook on the group): ECS sets DRAINING; ecs-boot
    waits for the tasks, completes only its own hook, never ECS's."""
    add_managed_draining_hook(moto, world)
    proc, agent = in_service(moto, world, ecs_boot, fake_agent, stop_delay=0.2)
    agent.add_tasks("web", kind="service", count=1)
    moto.reset_calls()
    scale_in(moto, world)
    # ECS, not ecs-boot, sets the instance DRAINING (the harness plays ECS).
    moto.client("ecs").update_container_instances_state(
        cluster=world.cluster, containerInstances=[agent.state()["container_instance_arn"]],
        status="DRAINING")
    wait_for(lambda: [c for c in client_calls(moto, "CompleteLifecycleAction")], timeout=30,
             what="terminate hook")
    assert client_calls(moto, "UpdateContainerInstancesState") == [], "fought ECS managed draining"
    names = [c["params"]["LifecycleHookName"] for c in client_calls(moto, "CompleteLifecycleAction")]
    assert names == [world.terminate_hook], names
    assert stop(proc) == 0


def test_a_tag_naming_the_managed_draining_hook_fails_the_boot(moto, make_world, ecs_boot,
                                                              fake_agent):
    world = make_world(tags={"ecs-boot:terminate-hook": MANAGED})
    add_managed_draining_hook(moto, world)
    proc, _ = start_instance(ecs_boot, fake_agent)
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "failed")
    assert "ecs-boot:terminate-hook" in json.dumps(s["error"]), s["error"]
    names = [c["params"]["LifecycleHookName"] for c in client_calls(moto, "CompleteLifecycleAction")]
    assert MANAGED not in names and names == [world.launch_hook], names
    proc.wait(20)
