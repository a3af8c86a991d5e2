"""Issue 22 item 4, after launch: ecs-boot watches its essential system containers through Docker
events. One that dies for good sets `ecs-boot.ready=false` (ECS PutAttributes, asserted on moto's
call log), is counted (`essential_failures`) and shown by `ecs-boot status`; healthy again, the
attribute goes back to `true`. With `[health] on_essential_failure = "drain"` the node drains. A
death while the event stream is cut (the engine's socket behind a proxy the test closes) is found
when the watch subscribes again.

Real Docker engine, busybox image of test_containers, each test its own container name; the
restart policy is "no" so a killed container stays dead until the test starts it again."""

from __future__ import annotations

import json
import os

import pytest

from harness.engine_proxy import SocketProxy
from harness.procs import wait_for
from lifecycle_helpers import client_calls, start_instance, status, stop, wait_state
from test_containers import LOCAL_TAG, SLEEP, busybox_image, docker  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e


def essential(name: str, health: str = "", grace: str = "1s") -> str:
    return (f'[[container]]\nname = "{name}"\nimage = "{LOCAL_TAG}"\npull = "never"\n'
            f'command = {SLEEP}\nessential = true\nrestart = "no"\nmin_uptime = "1s"\n'
            f'[docker]\nengine_wait = "20s"\n[health]\nrestart_grace = "{grace}"\n{health}')


def ready_values(moto) -> list[str]:
    """Every ecs-boot.ready ecs-boot sent, in order, accepted or not."""
    return [a["value"] for c in client_calls(moto, "PutAttributes")
            for a in c["params"]["attributes"] if a["name"] == "ecs-boot.ready"]


def wait_ready_values(moto, expected: list[str], timeout: float = 30):
    return wait_for(lambda: ready_values(moto) == expected or None, timeout=timeout,
                    what=f"ecs-boot.ready sent as {expected} (sent so far: {ready_values(moto)})")


def ready_in_ecs(moto, world) -> list[str]:
    """ecs-boot.ready as ECS holds it on the cluster's container instances."""
    ecs = moto.client("ecs")
    arns = ecs.list_container_instances(cluster=world.cluster)["containerInstanceArns"]
    described = ecs.describe_container_instances(cluster=world.cluster,
                                                 containerInstances=arns)["containerInstances"]
    return [a.get("value") for ci in described for a in ci.get("attributes", [])
            if a["name"] == "ecs-boot.ready"]


@pytest.fixture
def container_name(world):
    name = f"health-{world.instance_id[-8:]}"
    yield name
    docker("rm", "-f", name, check=False)


def in_service(ecs_boot, fake_agent, extra):
    proc, agent = start_instance(ecs_boot, fake_agent, extra)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service", timeout=40)
    # The watch has listed the containers: the state carries its record.
    wait_state(ecs_boot, lambda s: s.get("health") is not None, timeout=10, what="health record")
    return proc, agent


def test_a_dead_essential_container_marks_the_node_not_ready_until_it_runs_again(
        moto, world, ecs_boot, fake_agent, busybox_image, container_name):
    proc, _ = in_service(ecs_boot, fake_agent, essential(container_name))
    assert ready_values(moto) == ["true"], "the launch marked it ready"

    docker("kill", container_name)
    wait_ready_values(moto, ["true", "false"])
    assert ready_in_ecs(moto, world) == ["false"]
    s = wait_state(ecs_boot, lambda s: not s["health"]["ready"], what="ready=false recorded")
    assert s["health"]["essential_failures"] == 1
    assert [f["name"] for f in s["health"]["failing"]] == [container_name]
    assert "exited with code 137" in s["health"]["failing"][0]["cause"]
    report = status(ecs_boot)
    assert report["health"] == "failed", "a node not ready is no healthy node"
    table = ecs_boot.run("status", timeout=20)
    assert table.returncode == 1
    assert "ecs-boot.ready=false  essential failures 1" in table.stdout, table.stdout
    assert f"DEAD {container_name}: exited with code 137" in table.stdout, table.stdout
    # The death is published too (EssentialContainerFailures, the module's alarm), after the
    # launch's 0: one point each, the sum counts the deaths.
    wait_state(ecs_boot, lambda s: (s.get("metrics") or {}).get("moment") == "essential-failures",
               what="EssentialContainerFailures published")
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc)
    stats = moto.client("cloudwatch").get_metric_statistics(
        Namespace="ECSBoot", MetricName="EssentialContainerFailures",
        Dimensions=[{"Name": "AutoScalingGroupName", "Value": world.asg},
                    {"Name": "ClusterName", "Value": world.cluster}],
        StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(minutes=5),
        Period=3600, Statistics=["Sum", "SampleCount"])["Datapoints"]
    assert [(p["Sum"], p["SampleCount"]) for p in stats] == [(1.0, 2.0)], stats

    docker("start", container_name)
    wait_ready_values(moto, ["true", "false", "true"])
    assert ready_in_ecs(moto, world) == ["true"]
    s = wait_state(ecs_boot, lambda s: s["health"]["ready"], what="ready=true recorded")
    assert s["health"]["essential_failures"] == 1, "the count only grows"
    assert not s["health"].get("failing")
    assert status(ecs_boot)["health"] == "healthy"
    assert all(c["accepted"] for c in client_calls(moto, "PutAttributes"))
    assert stop(proc) == 0


def test_on_essential_failure_drain_sets_draining(moto, world, ecs_boot, fake_agent,
                                                   busybox_image, container_name):
    proc, agent = in_service(ecs_boot, fake_agent,
                             essential(container_name, 'on_essential_failure = "drain"\n'))
    assert client_calls(moto, "UpdateContainerInstancesState") == []
    docker("kill", container_name)
    wait_for(lambda: client_calls(moto, "UpdateContainerInstancesState"), timeout=30,
             what="DRAINING requested")
    [call] = client_calls(moto, "UpdateContainerInstancesState")
    assert call["params"]["status"] == "DRAINING"
    assert ready_values(moto) == ["true", "false"], "marked not ready before the drain"
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "drained", timeout=30)
    assert s["drain"]["trigger"] == f"essential-failure:{container_name}"
    assert not [c for c in moto.completions() if c["transition"].endswith("TERMINATING")], \
        "no termination behind it: no terminate hook completed"
    assert stop(proc) == 0


def test_a_death_while_the_event_stream_is_cut_is_found_on_resubscribing(
        moto, world, ecs_boot, fake_agent, busybox_image, container_name, tmp_path):
    engine = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not engine.startswith("unix://"):
        pytest.fail(f"this test proxies the engine's unix socket; DOCKER_HOST is {engine}")
    proxy = SocketProxy(tmp_path / "docker.sock", engine.removeprefix("unix://"))
    ecs_boot.env["DOCKER_HOST"] = proxy.url
    try:
        # The grace outlasts the cut: what fails the container is the listing on resubscribing,
        # not the engine's absence (that would say "unreachable").
        proc, _ = in_service(ecs_boot, fake_agent, essential(container_name, grace="5s"))
        wait_state(ecs_boot, lambda s: not s["health"].get("watch_error"), what="subscribed")
        proxy.close()
        wait_state(ecs_boot, lambda s: s["health"].get("watch_error"), what="stream loss seen")
        # Dies while nobody listens: no event will ever tell ecs-boot.
        docker("kill", container_name)
        proxy.restore()
        wait_ready_values(moto, ["true", "false"])
        s = wait_state(ecs_boot, lambda s: not s["health"]["ready"])
        assert s["health"]["essential_failures"] == 1
        assert [f["name"] for f in s["health"]["failing"]] == [container_name]
        assert "found not running when the engine was listed" in s["health"]["failing"][0]["cause"]
        assert not s["health"].get("watch_error"), "subscribed again"
        log = proc.log_path.read_text()
        assert "Docker event stream lost" in log, log[-2000:]
        assert stop(proc) == 0
    finally:
        proxy.close()


def test_a_crash_loop_is_dead_for_good_while_docker_keeps_restarting_it(
        moto, world, ecs_boot, fake_agent, busybox_image, container_name, tmp_path):
    # Exits 3 at once while /m/crash exists: with restart "always", Docker restarts it again and
    # again (backoff 100 ms doubling): never down for a whole grace, yet dead for good.
    marker_dir = tmp_path / "m"
    marker_dir.mkdir()
    command = json.dumps(["/bin/busybox", "sh", "-c",
                          "[ -f /m/crash ] && exit 3; trap 'exit 0' TERM; sleep 3600 & wait"])
    config = (f'[[container]]\nname = "{container_name}"\nimage = "{LOCAL_TAG}"\n'
              f'pull = "never"\ncommand = {command}\nessential = true\nrestart = "always"\n'
              f'min_uptime = "1s"\nbinds = ["{marker_dir}:/m"]\n'
              f'[docker]\nengine_wait = "20s"\n[health]\nrestart_grace = "2s"\n')
    proc, _ = in_service(ecs_boot, fake_agent, config)
    (marker_dir / "crash").touch()
    # The exec may die with the container it stops (exit 137): the outcome is checked below.
    docker("exec", container_name, "kill", "1", check=False)
    wait_ready_values(moto, ["true", "false"])
    s = wait_state(ecs_boot, lambda s: not s["health"]["ready"])
    assert "restarting in a loop" in s["health"]["failing"][0]["cause"], s["health"]
    assert s["health"]["essential_failures"] == 1

    (marker_dir / "crash").unlink()
    wait_ready_values(moto, ["true", "false", "true"], timeout=40)
    s = wait_state(ecs_boot, lambda s: s["health"]["ready"])
    assert s["health"]["essential_failures"] == 1
    assert stop(proc) == 0
