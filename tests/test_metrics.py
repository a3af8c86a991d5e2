"""Issue 22, metrics: ecs-boot publishes its own boot, hook and drain metrics (PutMetricData to
moto's CloudWatch), with the AutoScalingGroupName and ClusterName dimensions the module's alarms
use, into the trusted config's namespace; an ABANDON's metric goes out before the ABANDON, and a
stuck CloudWatch never holds the ABANDON up for longer than `[metrics] timeout`."""

from __future__ import annotations

from lifecycle_helpers import never_registering_boot, start_instance, status, wait_state

NAMESPACE = "Test/ECSBoot"
METRICS = f'[metrics]\nnamespace = "{NAMESPACE}"\ntimeout = "{{timeout}}"\n'


def metric_dims(moto, name) -> list[dict]:
    listed = moto.client("cloudwatch").list_metrics(Namespace=NAMESPACE, MetricName=name)
    return [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in listed["Metrics"]]


def total(moto, name, dims: dict) -> float | None:
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc)
    out = moto.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE, MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(minutes=5),
        Period=3600, Statistics=["Sum"])
    points = out["Datapoints"]
    return sum(p["Sum"] for p in points) if points else None


def puts(moto):
    return [c for c in moto.calls(source="client") if c["action"] == "PutMetricData"]


def failing_boot(ecs_boot, fake_agent, timeout="3s"):
    """A boot whose ECS agent never registers: ecs-boot fails the launch and ABANDONs."""
    return never_registering_boot(ecs_boot, fake_agent, METRICS.format(timeout=timeout))


def test_a_boot_in_service_publishes_its_metrics_with_group_and_cluster(
        moto, world, ecs_boot, fake_agent):
    proc, _ = start_instance(ecs_boot, fake_agent, METRICS.format(timeout="3s"))
    s = wait_state(ecs_boot, lambda s: (s.get("metrics") or {}).get("moment") == "in-service")
    assert "error" not in s["metrics"], s["metrics"]
    assert s["metrics"]["namespace"] == NAMESPACE
    dims = {"AutoScalingGroupName": world.asg, "ClusterName": world.cluster}
    for name in ("InService", "BootDuration", "LaunchHookLatency",
                 "EssentialContainerFailures"):
        assert metric_dims(moto, name) == [dims], name
    assert total(moto, "InService", dims) == 1
    assert total(moto, "EssentialContainerFailures", dims) == 0
    phases = {d["Phase"] for d in metric_dims(moto, "PhaseDuration")}
    assert {"identity", "credentials", "registration", "launch-hook"} <= phases, phases
    # Nothing went to CloudWatch's default or any other namespace.
    assert {c["params"]["Namespace"] for c in puts(moto)} == {NAMESPACE}
    # status says where the metrics went.
    assert f"points into {NAMESPACE}" in ecs_boot.run("status").stdout
    proc.kill()


def test_an_abandon_is_published_before_the_abandon(moto, world, ecs_boot, fake_agent):
    proc = failing_boot(ecs_boot, fake_agent)
    assert proc.wait(40) == 1
    assert [c["result"] for c in moto.completions()] == ["ABANDON"]
    dims = {"AutoScalingGroupName": world.asg, "ClusterName": world.cluster}
    assert total(moto, "Abandons", dims) == 1
    sent = puts(moto)
    complete = [c for c in moto.calls(source="client")
                if c["action"] == "CompleteLifecycleAction"]
    assert len(sent) == 1 and sent[0]["accepted"], sent
    assert len(complete) == 1 and sent[0]["time"] < complete[0]["time"]
    assert status(ecs_boot)["state"]["metrics"]["moment"] == "abandon"


def test_a_stuck_cloudwatch_does_not_hold_up_the_abandon(moto, world, ecs_boot, fake_agent):
    held = moto.hold("monitoring", "PutMetricData", when="before")
    try:
        proc = failing_boot(ecs_boot, fake_agent, timeout="2s")
        held.wait_arrived(40)
        # PutMetricData is still held, yet the ABANDON goes out and ecs-boot exits.
        assert proc.wait(40) == 1
        assert [c["result"] for c in moto.completions()] == ["ABANDON"]
        m = status(ecs_boot)["state"]["metrics"]
        assert "gave up after [metrics] timeout = 2s" in m["error"], m
        assert "metrics  abandon" in ecs_boot.run("status").stdout
    finally:
        held.release()


def test_metrics_off_in_the_trusted_config_send_nothing(moto, world, ecs_boot, fake_agent):
    proc, _ = start_instance(ecs_boot, fake_agent, "[metrics]\nenabled = false\n")
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    proc.kill()
    assert puts(moto) == []


def test_a_drain_that_hits_its_deadline_is_published_before_the_terminate_hook(
        moto, world, ecs_boot, fake_agent):
    from lifecycle_helpers import stop
    proc, agent = start_instance(
        ecs_boot, fake_agent, stop_delay=None,
        extra_config='deadline = "3s"\nstandalone_grace = "1h"\n' + METRICS.format(timeout="3s"))
    wait_state(ecs_boot, lambda s: (s.get("metrics") or {}).get("moment") == "in-service")
    agent.add_tasks("stuck", kind="service", count=2)
    moto.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=world.instance_id, ShouldDecrementDesiredCapacity=True)
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated", timeout=40)
    assert s["drain"]["state"] == "deadline" and s["drain"]["tasks_at_start"] == 2, s["drain"]
    assert s["metrics"]["moment"] == "drained" and "error" not in s["metrics"], s["metrics"]
    dims = {"AutoScalingGroupName": world.asg, "ClusterName": world.cluster}
    assert total(moto, "DrainDeadlineHit", dims) == 1
    assert total(moto, "TasksDrained", dims) == 0
    assert metric_dims(moto, "DrainDuration") == [dims]
    drained = [c for c in puts(moto) if "DrainDuration" in c["params"].values()]
    complete = [c for c in moto.calls(source="client") if c["action"] == "CompleteLifecycleAction"
                and c["params"].get("LifecycleHookName") == world.terminate_hook]
    assert len(drained) == 1 and complete and drained[0]["time"] < complete[-1]["time"]
    assert stop(proc) == 0


def test_the_cloudwatch_agent_config_follows_the_trusted_channel(ecs_boot):
    """`ecs-boot cloudwatch-agent` (the unit's ExecCondition): the baked config says nothing, the
    module's config.d names the log group and namespace; another config.d file turns logs off."""
    import json
    out = ecs_boot.root / "run/ecs-boot/cloudwatch-agent.json"
    ecs_boot.write_config("")
    ecs_boot.config_d.mkdir(parents=True, exist_ok=True)
    (ecs_boot.config_d / "50-terraform.toml").write_text(
        '[metrics]\nnamespace = "Team/Boot"\n[logs]\ngroup = "/ecs-boot/web"\n')
    r = ecs_boot.run("cloudwatch-agent")
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    journald = doc["logs"]["logs_collected"]["journald"]["collect_list"]
    assert {e["log_group_name"] for e in journald} == {"/ecs-boot/web"}
    assert "{instance_id}/ecs-boot" in {e["log_stream_name"] for e in journald}
    assert doc["metrics"]["namespace"] == "Team/Boot"

    (ecs_boot.config_d / "60-quiet.toml").write_text(
        "[logs]\nenabled = false\n[metrics]\nenabled = false\n")
    r = ecs_boot.run("cloudwatch-agent")
    assert r.returncode == 1 and "[logs] and [metrics] are disabled" in r.stderr, r.stderr
    assert not out.exists(), "a stale config would start the agent anyway"
    # A broken config skips the agent too: logging is never essential.
    (ecs_boot.config_d / "60-quiet.toml").write_text("[logs]\ngroup = \"bad group\"\n")
    r = ecs_boot.run("cloudwatch-agent")
    assert r.returncode == 1 and "logs.group" in r.stderr, r.stderr
