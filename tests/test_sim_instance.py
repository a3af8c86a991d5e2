"""A simulated instance boots for real: systemd as PID 1 in a container runs ecs-boot end to end.

The image (tests/sim/build-image) has ecs-boot installed from its RPM by packer/scripts/, a
stand-in ecs.service ordered like the real one that runs the fake ECS agent, and reaches moto and
the fake IMDS (in this pytest process) on the host's loopback. See tests/sim/README.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "sim"))

from harness.imds import FakeImds  # noqa: E402
from harness.procs import http_json  # noqa: E402
from harness.world import build_world, follow_lifecycle, trust_dropin  # noqa: E402
from test_containers import busybox_image  # noqa: E402,F401 (fixture)
from instance import (  # noqa: E402
    REPO_ROOT, SIM_DIR, SYSTEM_CONTAINER_LABEL, Instance, docker, engine_reachable, port_open,
    wait_for, write_env_file)

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not engine_reachable(),
                                 reason="no Docker engine reachable (docker info failed)")]

BOOT_TIMEOUT = 90
INTROSPECTION = "http://127.0.0.1:51678"
AGENT_ADMIN = "http://127.0.0.1:51680/_admin"
SYSTEM_CONTAINER = "ecs-boot-sim-log-shipper"  # tests/sim/config.toml


@pytest.fixture(scope="session")
def sim_image() -> str:
    """Built once per session, through the RPM and packer/scripts/: the RPM comes from
    tests/sim/cached-rpm (the `sim` profile, shared with tests/test_packer.py and the demo, rebuilt
    only when its inputs change), the Debian base from .cache/sim/. Minutes cold, seconds warm.
    ECS_BOOT_SIM_IMAGE reuses a built image instead."""
    if os.environ.get("ECS_BOOT_SIM_IMAGE"):
        return os.environ["ECS_BOOT_SIM_IMAGE"]
    started = time.monotonic()
    res = subprocess.run([str(SIM_DIR / "build-image")], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=2400)
    if res.returncode != 0:
        pytest.fail(f"tests/sim/build-image failed ({res.returncode}):\n{res.stderr[-4000:]}")
    print(f"\nsim image built in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return res.stdout.strip().splitlines()[-1]


def agent_registered() -> bool:
    """The stand-in agent's introspection API, like ecs-boot sees it (opens after registering)."""
    try:
        status, body = http_json("GET", INTROSPECTION + "/v1/metadata", timeout=2)
    except OSError:
        return False
    return status == 200 and bool((body or {}).get("ContainerInstanceArn"))


def completions(moto, world, hook: str) -> list[dict]:
    return [c for c in moto.completions()
            if c.get("instance") == world.instance_id and c.get("hook") == hook]


def container_instances(moto, cluster: str) -> list[dict]:
    ecs = moto.client("ecs")
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    if not arns:
        return []
    return ecs.describe_container_instances(cluster=cluster,
                                            containerInstances=arns)["containerInstances"]


def boot(name: str, moto_url: str, imds_url: str, tmp: Path, image: str, world,
         extra_env: dict | None = None) -> Instance:
    """Boot with the world's trusted settings in config.d, as the launch template's user data
    would write them (its allowlisted credential and fragment locations)."""
    env_file = write_env_file(tmp / f"{name}.env", moto_url, imds_url, extra_env)
    user_data = tmp / f"{name}-user-data.toml"
    user_data.write_text(trust_dropin([world]))
    return Instance.boot(name, env_file, image, user_data)


def systemd_seconds(text: str) -> float:
    """A systemd time span as `systemctl show` prints it ("1min 30s", "500ms") in seconds."""
    units = {"h": 3600, "min": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    if text.strip() == "infinity":
        return float("inf")
    total = 0.0
    for part in text.split():
        number = part.rstrip("hminsu")
        total += float(number) * units[part[len(number):]]
    return total


def report(instance: Instance):
    """Attach the instance's own account of the boot to an assertion message."""
    return f"\n{instance.diagnostics()}"


# --- a healthy boot, then its termination (one instance, tests in order) ------------------------


@pytest.fixture(scope="class")
def booted(sim_image, moto_server, tmp_path_factory):
    """One instance for the whole class: boot, checks, then termination, in file order."""
    moto_server.reset()
    imds = FakeImds(moto_url=moto_server.url).start()
    world = build_world(moto_server.url, imds, name="sim")
    follow_lifecycle(imds, world.instance_id)
    instance = boot("ecs-boot-sim-e2e", moto_server.url, imds.url,
                    tmp_path_factory.mktemp("sim"), sim_image, world)
    try:
        wait_for(lambda: instance.outcome() == "in_service", BOOT_TIMEOUT,
                 "ecs-boot status outcome in_service")
        wait_for(agent_registered, 30, "the fake ECS agent to register")
        yield instance, world, moto_server, imds
    except TimeoutError as err:
        pytest.fail(f"{err}{report(instance)}")
    finally:
        instance.destroy()
        imds.stop()
        moto_server.reset()


class TestBootThenTerminate:
    def test_ecs_boot_ready_before_ecs_service_started(self, booted):
        instance, *_ = booted
        wait_for(lambda: instance.active_state("ecs") == "active", 30, "ecs.service active")
        boot_unit = instance.show("ecs-boot", "Type", "ActiveEnterTimestampMonotonic", "NRestarts")
        ecs_unit = instance.show("ecs", "InactiveExitTimestampMonotonic",
                                 "ExecMainStartTimestampMonotonic", "NRestarts")
        assert boot_unit["Type"] == "notify"
        ready = int(boot_unit["ActiveEnterTimestampMonotonic"])  # READY=1 for Type=notify
        ecs_start = int(ecs_unit["InactiveExitTimestampMonotonic"])  # its ExecStartPre began
        assert 0 < ready <= ecs_start, f"{boot_unit} {ecs_unit}{report(instance)}"
        assert ecs_unit["NRestarts"] == "0", "the gate or the agent failed once" + report(instance)

    def test_ecs_config_content_and_mode(self, booted):
        instance, world, *_ = booted
        mode = instance.sh("stat", "-c", "%a %U:%G", "/etc/ecs/ecs.config").stdout.split()
        assert mode == ["600", "root:root"]
        lines = instance.sh("cat", "/etc/ecs/ecs.config").stdout.splitlines()
        settings = dict(line.split("=", 1) for line in lines if "=" in line
                        and not line.startswith("#"))
        assert settings["ECS_CLUSTER"] == world.cluster
        assert settings["ECS_ENGINE_AUTH_TYPE"] == "dockercfg"
        assert world.registry in settings["ECS_ENGINE_AUTH_DATA"]
        # What the stand-in agent got through EnvironmentFile= and registered with:
        state = http_json("GET", AGENT_ADMIN + "/state")[1]
        assert state["registered"] and state["cluster"] == world.cluster

    def test_system_container_running_on_the_engine(self, booted):
        instance, *_ = booted
        label = SYSTEM_CONTAINER_LABEL.split("=")[0]
        template = "{{.State.Running}} {{index .Config.Labels \"" + label + "\"}}"

        def running():
            res = docker("inspect", "-f", template, SYSTEM_CONTAINER, check=False)
            return res.returncode == 0 and res.stdout.split() == ["true", "system-container"]
        try:
            wait_for(running, 30, f"system container {SYSTEM_CONTAINER} running")
        except TimeoutError as err:
            pytest.fail(f"{err}{report(instance)}")

    def test_launch_hook_completed_continue(self, booted):
        instance, world, moto, _ = booted
        try:
            done = wait_for(lambda: completions(moto, world, world.launch_hook), 30,
                            "launch hook completion")
        except TimeoutError as err:
            pytest.fail(f"{err}{report(instance)}")
        assert [c["result"] for c in done] == ["CONTINUE"]
        assert moto.lifecycle_state(world.asg, world.instance_id) == "InService"
        [ci] = container_instances(moto, world.cluster)
        assert ci["ec2InstanceId"] == world.instance_id and ci["status"] == "ACTIVE"

    def test_status_through_docker_exec_is_healthy(self, booted):
        instance, world, *_ = booted
        code, doc = instance.status()
        assert code == 0 and doc["health"] == "healthy", report(instance)
        assert doc["daemon_running"] is True
        assert doc["state"]["instance"]["instance_id"] == world.instance_id
        assert all(p["status"] == "ok" for p in doc["state"]["phases"]), doc["state"]["phases"]
        table = instance.sh("ecs-boot", "status").stdout
        assert "healthy" in table and world.cluster in table

    def test_journal_holds_structured_fields(self, booted):
        instance, world, *_ = booted
        entries = [e for e in instance.journal("ecs-boot") if e.get("_COMM") == "ecs-boot"]
        assert entries, "no journal entries from the ecs-boot process"
        # tracing-journald sends each event field as its own journal field (F_ prefix).
        phases = {e.get("F_PHASE") or e.get("PHASE") for e in entries} - {None}
        assert {"identity", "tags", "ecs-config-write"} <= phases, phases
        fields = {k: v for e in entries for k, v in e.items()
                  if k.startswith("F_") or k == "INSTANCE_ID"}
        assert world.instance_id in fields.values(), sorted(fields)

    def test_termination_drains_then_completes_terminate_hook(self, booted):
        instance, world, moto, imds = booted
        status, body = http_json("POST", AGENT_ADMIN + "/tasks", {"kind": "service", "count": 2})
        assert status == 200, body
        # Scale-in: the harness puts the instance in Terminating:Wait and, like AWS, flips IMDS
        # target-lifecycle-state to Terminated (follow_lifecycle).
        moto.client("autoscaling").terminate_instance_in_auto_scaling_group(
            InstanceId=world.instance_id, ShouldDecrementDesiredCapacity=True)
        assert imds.target_lifecycle_state == "Terminated"
        try:
            done = wait_for(lambda: completions(moto, world, world.terminate_hook), 60,
                            "terminate hook completion")
        except TimeoutError as err:
            pytest.fail(f"{err}{report(instance)}")
        assert [c["result"] for c in done] == ["CONTINUE"]
        [ci] = container_instances(moto, world.cluster)
        assert ci["status"] == "DRAINING"
        tasks = http_json("GET", INTROSPECTION + "/v1/tasks")[1]["Tasks"]
        assert tasks and all(t["KnownStatus"] == "STOPPED" for t in tasks), \
            "terminate hook completed before the tasks drained"

    def test_systemctl_stop_exits_cleanly_within_timeout(self, booted):
        instance, *_ = booted
        limit = systemd_seconds(instance.sh("systemctl", "show", "ecs-boot", "-P",
                                            "TimeoutStopUSec").stdout)
        started = time.monotonic()
        instance.sh("systemctl", "stop", "ecs-boot", timeout=limit + 30)
        took = time.monotonic() - started
        props = instance.show("ecs-boot", "ActiveState", "Result", "ExecMainCode",
                              "ExecMainStatus")
        assert props["ActiveState"] == "inactive" and props["Result"] == "success", \
            f"{props}{report(instance)}"
        assert props["ExecMainStatus"] == "0", props
        # Well inside the timeout: a stop that hits TimeoutStopSec ends in SIGKILL, not success.
        assert took < min(limit, 20), f"stop took {took:.1f}s (TimeoutStopSec {limit:.0f}s)"


# --- a crash mid-boot ----------------------------------------------------------------------------


def test_kill_mid_boot_restarts_and_converges_with_one_completion(sim_image, moto, imds,
                                                                  make_world, tmp_path):
    world = make_world(name="crash")
    # The agent takes 8 s to register: ecs-boot is READY and waiting on the launch hook.
    instance = boot("ecs-boot-sim-crash", moto.url, imds.url, tmp_path, sim_image, world,
                    {"FAKE_ECS_REGISTER_DELAY": "8"})
    try:
        wait_for(lambda: instance.active_state("ecs") == "active", BOOT_TIMEOUT,
                 "ecs.service active")
        assert not completions(moto, world, world.launch_hook), "registered too early to test"
        instance.sh("systemctl", "kill", "-s", "KILL", "ecs-boot")
        wait_for(lambda: instance.show("ecs-boot", "NRestarts")["NRestarts"] == "1", 60,
                 "systemd to restart ecs-boot")
        wait_for(lambda: instance.outcome() == "in_service", BOOT_TIMEOUT, "in_service again")
        done = wait_for(lambda: completions(moto, world, world.launch_hook), 60,
                        "launch hook completion")
        time.sleep(3)  # a duplicate completion would show up by now
        done = completions(moto, world, world.launch_hook)
        assert [c["result"] for c in done] == ["CONTINUE"], done
        assert moto.lifecycle_state(world.asg, world.instance_id) == "InService"
        assert len(container_instances(moto, world.cluster)) == 1
        code, doc = instance.status()
        assert code == 0 and doc["health"] == "healthy"
    except (TimeoutError, AssertionError) as err:
        pytest.fail(f"{err}{report(instance)}")
    finally:
        instance.destroy()


def assert_agent_never_ran(instance: Instance) -> None:
    ecs_unit = instance.show("ecs", "ActiveState", "ExecMainStartTimestampMonotonic")
    assert ecs_unit["ActiveState"] != "active", ecs_unit
    assert ecs_unit["ExecMainStartTimestampMonotonic"] == "0", \
        f"the fake agent (ExecStart) ran: {ecs_unit}"
    assert not port_open(51680), "the fake agent's admin port is open: it ran"


# --- fail closed (issue 12): no cluster tag, no agent ------------------------------------------


def test_no_cluster_tag_keeps_ecs_service_from_ever_running(sim_image, moto, imds, make_world,
                                                            tmp_path):
    world = make_world(name="nocluster", tags={"ecs-boot:cluster": None})
    assert "ecs-boot:cluster" not in world.tags
    instance = boot("ecs-boot-sim-nocluster", moto.url, imds.url, tmp_path, sim_image, world)
    try:
        # [tags] wait is 10 s in tests/sim/config.toml; then the boot fails. systemd restarts
        # ecs-boot (Restart=on-failure), so catch one failed run's status in a single snapshot.
        def failed_status():
            code, doc = instance.status()
            return (code, doc) if ((doc or {}).get("state") or {}).get("outcome") == "failed" \
                else None
        code, doc = wait_for(failed_status, BOOT_TIMEOUT, "ecs-boot status outcome failed")
        assert code != 0 and doc["health"] != "healthy", doc
        assert "ecs-boot:cluster" in json.dumps(doc), f"status does not name the missing tag: {doc}"
        # At boot: ecs.service is enabled, yet the agent never runs (whether systemd skipped it
        # for the failed dependency or the gate refused it).
        time.sleep(3)
        assert_agent_never_ran(instance)
        # Started by hand, as an operator or a reboot would, without its dependencies: the RPM's
        # drop-in (ExecStartPre=/usr/bin/ecs-boot gate) still refuses it.
        forced = instance.sh("systemctl", "start", "--job-mode=ignore-requirements", "ecs",
                             check=False, timeout=60)
        assert forced.returncode != 0, "ecs.service started without a complete ecs.config"
        gate = [e.get("MESSAGE", "") for e in instance.journal("ecs")
                if e.get("_COMM") == "ecs-boot"]
        assert gate, "the gate did not run in ecs.service's ExecStartPre" + report(instance)
        assert_agent_never_ran(instance)
        config = instance.sh("cat", "/etc/ecs/ecs.config", check=False).stdout
        assert "ECS_CLUSTER=" not in config, config
        # Nothing joined any cluster: not the tagged-less world's, not `default`.
        ecs = moto.client("ecs")
        for cluster in ecs.list_clusters()["clusterArns"]:
            assert not ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
        # on_failure = abandon (the default): the ASG replaces the instance at once.
        results = [c for c in completions(moto, world, world.launch_hook)]
        assert [(c["result"], c["source"]) for c in results] == [("ABANDON", "api")], results
        # With the daemon down, status still answers and shows the unit's last journal lines.
        instance.sh("systemctl", "stop", "ecs-boot", check=False)
        code, doc = instance.status()
        assert code == 1 and doc["daemon_running"] is False, doc
        assert any("ecs-boot" in line for line in doc["journal"]), doc["journal"]
        table = instance.sh("ecs-boot", "status", check=False).stdout
        assert "last journal lines of ecs-boot.service" in table, table
    except (TimeoutError, AssertionError) as err:
        pytest.fail(f"{err}{report(instance)}")
    finally:
        instance.destroy()


# --- a bootstrap container prepares the node before the agent starts (issue 25) ----------------


def test_bootstrap_container_finishes_before_the_ecs_agent_starts(sim_image, moto, imds,
                                                                 make_world, tmp_path,
                                                                 busybox_image):
    """The stand-in agent exits 1 unless the file a bootstrap container writes exists
    (FAKE_ECS_REQUIRE_FILE): registered with no restart means systemd started ecs.service only
    after the bootstrap container had finished."""
    world = make_world(name="bootstrap")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    done = shared.resolve() / "prepared"
    user_data = tmp_path / "bootstrap-user-data.toml"
    user_data.write_text(trust_dropin([world]) + (
        '\n[[bootstrap]]\nname = "prepare-node"\n'
        f'image = "{busybox_image}"\npull = "never"\n'
        'command = ["/bin/sh", "-c", "sleep 3; touch /out/prepared"]\n'
        f'binds = ["{shared.resolve()}:/out"]\ntimeout = "60s"\n'))
    env_file = write_env_file(tmp_path / "bootstrap.env", moto.url, imds.url,
                              {"FAKE_ECS_REQUIRE_FILE": str(done)})
    instance = Instance.boot("ecs-boot-sim-bootstrap", env_file, sim_image, user_data, shared)
    try:
        wait_for(lambda: instance.outcome() == "in_service", BOOT_TIMEOUT, "in_service")
        assert done.exists()
        ecs_unit = instance.show("ecs", "NRestarts", "ActiveState")
        assert ecs_unit == {"NRestarts": "0", "ActiveState": "active"}, \
            f"{ecs_unit}{report(instance)}"
        code, doc = instance.status()
        phase = next(p for p in doc["state"]["phases"] if p["name"] == "bootstrap:prepare-node")
        assert phase["status"] == "ok" and phase["detail"] == "exit code 0", phase
        assert [c["result"] for c in completions(moto, world, world.launch_hook)] == ["CONTINUE"]
    except TimeoutError as err:
        pytest.fail(f"{err}{report(instance)}")
    finally:
        instance.destroy()
