"""From `terraform apply` to a drained instance: the module applied against moto, simulated
instances booted from what it created (read back from moto), scaled out and in, refreshed by a
setting change, and destroyed with every instance drained (README "from terraform apply to a
drained instance").

One module-scoped apply; the tests run in file order and each builds on the previous state:
    test_1  apply: the group is empty, hooks, template and AMI parameter as the module made them
    test_2  scale 0 -> 3: three boots from the template's user data, three CONTINUEs
    test_3  scale in by one: DRAINING first, then CONTINUE on the terminate hook
    test_4  an agent setting changes: terraform starts an instance refresh, replacements boot
            with the new setting, old instances drain through the terminate hook
    test_5  terraform destroy: every instance drains while the role's policies still exist
Instances are ecs-boot processes (harness/tf_fleet.py); the systemd instance of tests/sim proves
the real unit in tests/test_sim_instance.py.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import lifecycle, refresh  # noqa: E402
from harness.procs import http_json, wait_for  # noqa: E402
from harness.terraform import TerraformRoot, inventory  # noqa: E402
from destroy_drain import DestroyOrder  # noqa: E402
from harness.tf_fleet import (  # noqa: E402
    AMI, AMI_PARAMETER, REGISTRY_BUCKET, REGISTRY_KEY, ROOT_HCL, Fleet, completions,
    docker_config_json, ecs_boot_binary, forget_terminated, launch_view, prepare_moto)

pytestmark = pytest.mark.e2e

BOOT_TIMEOUT = 60
SETTINGS_BEFORE = {"ECS_IMAGE_PULL_BEHAVIOR": "prefer-cached"}
SETTINGS_AFTER = {"ECS_IMAGE_PULL_BEHAVIOR": "always"}


class Stack:
    def __init__(self, moto, tmp: Path):
        self.moto = moto
        self.tmp = tmp
        self.tf = TerraformRoot.test_root("fleet-e2e", ROOT_HCL, tmp, moto.url)
        self.out: dict = {}
        self.fleet: Fleet | None = None
        self.timings: dict[str, float] = {}

    def client(self, service):
        return self.moto.client(service)

    def ecs_instances(self) -> dict[str, dict]:
        ecs = self.client("ecs")
        arns = ecs.list_container_instances(cluster=self.out["cluster"])["containerInstanceArns"]
        if not arns:
            return {}
        found = ecs.describe_container_instances(cluster=self.out["cluster"],
                                                 containerInstances=arns)["containerInstances"]
        return {c["ec2InstanceId"]: c for c in found}

    def live(self) -> dict[str, str]:
        return {i: s for i, s in self.fleet.group_states().items() if s != "Terminated"}


@pytest.fixture(scope="module")
def stack(moto_server, tmp_path_factory):
    started = time.monotonic()
    moto_server.reset()
    s = Stack(moto_server, tmp_path_factory.mktemp("fleet-e2e"))
    prepare_moto(s.client, docker_config_json("https://index.docker.io/v1/", "fleet",
                                              "fl33t-pass"))
    s.tf.init()
    s.tf.apply({"agent_settings": SETTINGS_BEFORE})
    s.out = s.tf.outputs()
    s.fleet = Fleet(s.client, moto_server.url, s.out["asg"], s.tmp / "instances",
                    ecs_boot_binary())
    s.timings["apply"] = time.monotonic() - started
    yield s
    s.fleet.stop_all()
    print(f"\nfleet e2e timings (s): {s.timings}", file=sys.stderr)
    moto_server.reset()


def diag(stack) -> str:
    return "\n".join(f"--- {iid}\n{inst.log()}" for iid, inst in stack.fleet.instances.items())


def test_1_apply_makes_an_empty_group_with_hooks_template_and_ami(stack):
    asg = stack.client("autoscaling")
    group = asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[stack.out["asg"]])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 0 and not group["Instances"]
    hooks = {h["LifecycleHookName"]: h for h in asg.describe_lifecycle_hooks(
        AutoScalingGroupName=stack.out["asg"])["LifecycleHooks"]}
    assert hooks[stack.out["launch_hook"]]["LifecycleTransition"].endswith("LAUNCHING")
    assert hooks[stack.out["terminate_hook"]]["LifecycleTransition"].endswith("TERMINATING")
    lt = stack.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=stack.out["launch_template_id"], Versions=["$Latest"],
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    ami = stack.client("ssm").get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
    assert lt["ImageId"] == ami == AMI
    assert lt["MetadataOptions"]["HttpTokens"] == "required"


def test_2_scale_out_boots_three_instances_from_the_template(stack):
    started = time.monotonic()
    # ECS managed scaling owns the desired capacity (the module ignores it after creation).
    stack.client("autoscaling").set_desired_capacity(
        AutoScalingGroupName=stack.out["asg"], DesiredCapacity=3)
    assert sorted(stack.live().values()) == ["Pending:Wait"] * 3
    booted = stack.fleet.sync()
    assert len(booted) == 3
    try:
        wait_for(lambda: len(completions(stack.out["launch_hook"])) == 3, BOOT_TIMEOUT,
                 what="three launch hook completions")
    except TimeoutError as err:
        pytest.fail(f"{err}\n{diag(stack)}")
    done = completions(stack.out["launch_hook"])
    assert sorted(c["instance"] for c in done) == sorted(booted)
    assert {c["result"] for c in done} == {"CONTINUE"}, f"{done}\n{diag(stack)}"
    assert {c["asg"] for c in done} == {stack.out["asg"]}
    assert sorted(stack.live().values()) == ["InService"] * 3
    registered = stack.ecs_instances()
    assert sorted(registered) == sorted(booted)
    for iid in booted:
        inst = stack.fleet.instances[iid]
        view = launch_view(stack.client, iid)
        # What reached the instance came from moto: the template's user data, the group's tags.
        assert view.tags["aws:autoscaling:groupName"] == stack.out["asg"]
        assert view.image_id == AMI
        config = dict(line.split("=", 1) for line in inst.ecs_config.read_text().splitlines()
                      if "=" in line)
        assert config["ECS_CLUSTER"] == stack.out["cluster"]
        assert config["ECS_IMAGE_PULL_BEHAVIOR"] == "prefer-cached"
        assert "index.docker.io" in config["ECS_ENGINE_AUTH_DATA"]
    stack.timings["scale_out"] = time.monotonic() - started


def test_3_scale_in_drains_then_continues_the_terminate_hook(stack):
    started = time.monotonic()
    for inst in stack.fleet.instances.values():
        http_json("POST", inst.agent.admin_url + "/tasks", {"kind": "service", "count": 1})
    # ECS managed scaling with managed termination protection (the module's default): it lifts
    # the protection of the instance it picked, then lowers the desired capacity.
    asg = stack.client("autoscaling")
    chosen = sorted(stack.live())[0]
    asg.set_instance_protection(AutoScalingGroupName=stack.out["asg"], InstanceIds=[chosen],
                                ProtectedFromScaleIn=False)
    asg.set_desired_capacity(AutoScalingGroupName=stack.out["asg"], DesiredCapacity=2)
    [victim] = [i for i, s in stack.live().items() if s == "Terminating:Wait"]
    assert victim == chosen
    try:
        [done] = wait_for(lambda: completions(stack.out["terminate_hook"], victim), 60,
                          what="the terminate hook's completion")
    except TimeoutError as err:
        pytest.fail(f"{err}\n{diag(stack)}")
    assert done["result"] == "CONTINUE" and done["asg"] == stack.out["asg"]
    assert stack.ecs_instances()[victim]["status"] == "DRAINING"
    tasks = stack.fleet.instances[victim].agent.tasks()
    assert tasks and all(t["KnownStatus"] == "STOPPED" for t in tasks), \
        "the hook was completed before the tasks stopped"
    assert stack.fleet.group_states()[victim] == "Terminated"
    assert sorted(stack.live().values()) == ["InService"] * 2
    stack.fleet.reap()
    stack.timings["scale_in"] = time.monotonic() - started


def test_4_agent_setting_change_refreshes_instances_through_the_hooks(stack):
    started = time.monotonic()
    old = set(stack.live())
    stack.tf.apply({"agent_settings": SETTINGS_AFTER})
    [r] = stack.moto.refreshes(stack.out["asg"])
    assert r["Status"] == "InProgress", r
    new = stack.fleet.sync()
    assert len(new) == 2 and not set(new) & old  # max 200 %: two launched before any goes
    try:
        wait_for(lambda: all(completions(stack.out["launch_hook"], i) for i in new), 60,
                 what="replacements' launch hooks")
        # The module's instance_warmup holds the terminations; move the refresh clock past it.
        refresh.advance(r["Preferences"]["InstanceWarmup"])
        wait_for(lambda: all(completions(stack.out["terminate_hook"], i) for i in old), 60,
                 what="old instances drained and their terminate hooks completed")
        wait_for(lambda: stack.moto.refreshes(stack.out["asg"])[0]["Status"] == "Successful",
                 30, what="the refresh to succeed")
    except TimeoutError as err:
        pytest.fail(f"{err}\n{stack.moto.refreshes(stack.out['asg'])}\n{diag(stack)}")
    assert set(stack.live()) == set(new)
    for iid in new:
        config = stack.fleet.instances[iid].ecs_config.read_text()
        assert "ECS_IMAGE_PULL_BEHAVIOR=always" in config
        assert launch_view(stack.client, iid).version == r["harness"]["target"]["number"]
    drained = {i: c["status"] for i, c in stack.ecs_instances().items() if i in old}
    assert set(drained.values()) == {"DRAINING"}, drained
    stack.fleet.reap()
    stack.timings["refresh"] = time.monotonic() - started


def test_5_destroy_drains_every_instance_while_its_permissions_exist(stack):
    started = time.monotonic()
    live = set(stack.live())
    assert len(live) == 2
    container_instances = {i: c["containerInstanceArn"] for i, c in stack.ecs_instances().items()
                           if i in live}
    assert sorted(container_instances) == sorted(live)

    def watch():
        # AWS drops terminated instances from the group after a while; the harness keeps them
        # until told, and both the drain and the group's delete wait for an empty group.
        while not stop.is_set():
            forget_terminated(stack.out["asg"])
            time.sleep(0.2)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stack.tf.timeout = 240  # every drain takes seconds here; a hang must fail, not wait 30 min
    stack.moto.reset_calls()
    try:
        stack.tf.destroy({"agent_settings": SETTINGS_AFTER})
    except Exception as err:  # noqa: BLE001
        calls = [(c["action"], c["status"], c["params"].get("AutoScalingGroupName"))
                 for c in stack.moto.calls(service="autoscaling")]
        pytest.fail(f"{err}\nAuto Scaling calls during destroy: {calls[:60]}\n"
                    f"group: {stack.fleet.group_states()}\n{diag(stack)}")
    finally:
        stop.set()
        watcher.join()
    order = DestroyOrder(stack.moto.calls(), stack.out)
    # Every instance: DRAINING, then CONTINUE on the terminate hook ...
    for iid, arn in container_instances.items():
        drained, completed = order.draining(arn), order.terminate_completed(iid)
        assert drained is not None, f"{iid} was never set DRAINING:\n{diag(stack)}"
        assert completed is not None, \
            f"{iid} ended without ecs-boot completing its terminate hook:\n{diag(stack)}"
        assert order.scaled_to_zero() < drained < completed, order.summary()
    # ... before what the drain needs is deleted (each of them was deleted: none is vacuous).
    last = max(order.terminate_completed(i) for i in live)
    for what, index in order.deletions().items():
        assert index is not None, f"destroy never deleted {what}: {order.summary()}"
        assert index > last, f"{what} deleted before every instance drained: {order.summary()}"
    assert inventory(stack.moto).keys() <= {"ssm:parameters", "s3:buckets"}, \
        inventory(stack.moto)
    stack.timings["destroy"] = time.monotonic() - started
