"""terraform/scripts/drain-group.sh, the destroy-time drain (terraform/destroy.tf), run as
Terraform runs it (sh, the AWS CLI, Terraform's environment) against the harness's moto: it scales
the group to zero, lifts scale-in protection, and waits until every instance has gone through the
terminate hook; it fails closed (non-zero, nothing deleted) on a deadline, Standby instances or a
missing CLI; an absent group is already drained. tests/test_fleet_e2e.py proves the whole destroy
with ecs-boot draining; this file proves the script's edges in seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from destroy_drain import StandInDrainer  # noqa: E402
from harness import lifecycle  # noqa: E402
from harness.terraform import MODULE_TREE  # noqa: E402

SCRIPT = MODULE_TREE / "scripts" / "drain-group.sh"
GROUP, HOOK = "drain-me", "drain-me-terminate"


def aws_cli() -> str:
    path = shutil.which("aws")
    if path is None:
        pytest.fail("the AWS CLI is missing (tests/requirements.txt installs awscli): the "
                    "destroy-time drain needs it where Terraform runs")
    return path


def drain(moto, group=GROUP, timeout=60, path=None) -> subprocess.CompletedProcess:
    """The script with the environment terraform_data.drain_on_destroy gives it."""
    env = {
        "PATH": path or os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto.url, "AWS_EC2_METADATA_DISABLED": "true",
        "ECS_BOOT_GROUP": group, "ECS_BOOT_REGION": "us-east-1",
        "ECS_BOOT_DRAIN_TIMEOUT": str(timeout), "ECS_BOOT_CLUSTER": "drain-cluster",
    }
    return subprocess.run(["/bin/sh", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=timeout + 60)


def group_with_instances(moto, count=3) -> list[str]:
    """A group as the module leaves it: instances protected from scale-in (managed termination
    protection), a terminate hook, InService."""
    lt = moto.client("ec2").create_launch_template(
        LaunchTemplateName="drain-me-lt",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    asg = moto.client("autoscaling")
    asg.create_auto_scaling_group(
        AutoScalingGroupName=GROUP, MinSize=0, MaxSize=5, DesiredCapacity=0,
        NewInstancesProtectedFromScaleIn=True, AvailabilityZones=["us-east-1a"],
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplate"]["LaunchTemplateId"],
                        "Version": "1"})
    asg.put_lifecycle_hook(AutoScalingGroupName=GROUP, LifecycleHookName=HOOK,
                           LifecycleTransition=lifecycle.TERMINATING, HeartbeatTimeout=900,
                           DefaultResult="CONTINUE")
    asg.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=count)
    instances = asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]["Instances"]
    assert {(i["LifecycleState"], i["ProtectedFromScaleIn"]) for i in instances} == {
        ("InService", True)}
    return sorted(i["InstanceId"] for i in instances)


def group(moto) -> dict:
    return moto.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]


def test_drain_scales_to_zero_lifts_protection_and_waits_for_every_terminate_hook(moto):
    aws_cli()
    instances = group_with_instances(moto)
    with StandInDrainer(moto, GROUP) as drainer:
        r = drain(moto)
    assert r.returncode == 0, r.stderr
    assert sorted(drainer.completed) == instances
    g = group(moto)
    assert (g["MinSize"], g["MaxSize"], g["DesiredCapacity"], g["Instances"]) == (0, 0, 0, [])
    calls = [c for c in moto.calls(service="autoscaling", source="client")
             if not c["action"].startswith("Describe")]
    assert calls[0]["action"] == "UpdateAutoScalingGroup" and calls[0]["params"] == {
        "AutoScalingGroupName": GROUP, "MinSize": "0", "MaxSize": "0", "DesiredCapacity": "0"}
    lifted = {v for c in calls if c["action"] == "SetInstanceProtection"
              and c["params"]["ProtectedFromScaleIn"] == "false"
              for k, v in c["params"].items() if k.startswith("InstanceIds.member.")}
    assert lifted == set(instances)
    # The script returned only once every instance had gone through its hook.
    done = [c for c in lifecycle.completions() if c["hook"] == HOOK]
    assert sorted(c["instance"] for c in done) == instances
    assert {c["result"] for c in done} == {"CONTINUE"}


def test_drain_past_its_deadline_fails_and_leaves_the_hooks_waiting(moto):
    aws_cli()
    instances = group_with_instances(moto, count=2)
    r = drain(moto, timeout=3)  # nobody completes the hooks
    assert r.returncode != 0
    assert "2 instance(s) still in the group" in r.stderr and "deadline 3s" in r.stderr, r.stderr
    # Fail closed: the instances still wait on their hook; the script deleted nothing.
    assert sorted(a["instance"] for a in lifecycle.actions() if a["hook"] == HOOK) == instances
    assert not [c for c in moto.calls(source="client") if c["action"].startswith("Delete")]


def test_drain_of_standby_instances_fails_with_what_to_do(moto):
    aws_cli()
    instances = group_with_instances(moto, count=1)
    moto.client("autoscaling").enter_standby(
        AutoScalingGroupName=GROUP, InstanceIds=instances, ShouldDecrementDesiredCapacity=True)
    r = drain(moto)
    assert r.returncode != 0
    assert "all in Standby" in r.stderr and "run terraform destroy again" in r.stderr, r.stderr


def test_drain_of_an_absent_group_is_done(moto):
    aws_cli()
    r = drain(moto, group="never-made")
    assert r.returncode == 0, r.stderr
    assert "nothing to drain" in r.stderr
    assert [c["action"] for c in moto.calls(source="client")] == ["DescribeAutoScalingGroups"]


def test_drain_without_the_aws_cli_stops_before_anything(moto, tmp_path):
    # A PATH with a shell and the usual tools but no aws.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "awk", "date", "od", "sleep", "xargs", "printf"):
        if (found := shutil.which(tool)):
            (bin_dir / tool).symlink_to(found)
    r = drain(moto, path=str(bin_dir))
    assert r.returncode != 0
    assert "AWS CLI (aws) is not on the PATH" in r.stderr and "Nothing has been deleted" in r.stderr
    assert moto.calls(source="client") == []
