"""The harness's instance refresh (tests/harness/refresh.py): AWS's rules, one test each.

Everything goes through boto3 against the moto server, as `ecs-boot-fleet rollout` and Terraform
will; lifecycle hooks are completed as ecs-boot would (CompleteLifecycleAction), and time moves
only when a test advances the harness clock.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

ASG = "refresh-asg"
LAUNCH_HOOK, TERMINATE_HOOK = "launch", "terminate"
OLD_AMI, NEW_AMI = "ami-12c6146b", "ami-1e749f67"  # moto built-ins
LONG = 3600  # heartbeat: nothing times out unless a test says so


@pytest.fixture
def asg(moto):
    return moto.client("autoscaling")


def make_group(moto, desired=4, group_version="1", hooks=True, warmup=0, image=OLD_AMI,
               heartbeat=LONG, launch_default="ABANDON"):
    """A group on template version 1 (OLD_AMI) whose first instances passed their launch hook,
    and a version 2 (NEW_AMI) to refresh to. Returns the template id."""
    ec2 = moto.client("ec2")
    lt = ec2.create_launch_template(LaunchTemplateName="refresh-lt", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1",
                                       LaunchTemplateData={"ImageId": NEW_AMI})
    specs = [{"LifecycleHookName": LAUNCH_HOOK,
              "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
              "HeartbeatTimeout": heartbeat, "DefaultResult": launch_default},
             {"LifecycleHookName": TERMINATE_HOOK,
              "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
              "HeartbeatTimeout": heartbeat, "DefaultResult": "CONTINUE"}] if hooks else []
    moto.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=ASG, MinSize=0, MaxSize=10, DesiredCapacity=desired,
        LaunchTemplate={"LaunchTemplateId": lt, "Version": group_version},
        AvailabilityZones=["us-east-1a"], LifecycleHookSpecificationList=specs,
        DefaultInstanceWarmup=warmup, HealthCheckGracePeriod=0)
    complete_all(moto)
    assert set(states(moto).values()) == {"InService"}
    return lt


def states(moto) -> dict[str, str]:
    """instance id -> lifecycle state, Terminated ones left out."""
    group = moto.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[ASG])["AutoScalingGroups"][0]
    return {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]
            if i["LifecycleState"] != "Terminated"}


def version_of(moto, iid) -> str:
    tags = moto.client("ec2").describe_tags(Filters=[
        {"Name": "resource-id", "Values": [iid]},
        {"Name": "key", "Values": ["aws:ec2launchtemplate:version"]}])["Tags"]
    return tags[0]["Value"]


def image_of(moto, iid) -> str:
    res = moto.client("ec2").describe_instances(InstanceIds=[iid])["Reservations"]
    return res[0]["Instances"][0]["ImageId"]


def complete_all(moto, result="CONTINUE", only=None) -> list[str]:
    """Complete every pending action (or those of `only`), as ecs-boot would; returns ids."""
    asg, done = moto.client("autoscaling"), []
    for action in moto.pending_actions():
        if only is not None and action["instance"] not in only:
            continue
        asg.complete_lifecycle_action(AutoScalingGroupName=action["asg"],
                                      LifecycleHookName=action["hook"],
                                      InstanceId=action["instance"], LifecycleActionResult=result)
        done.append(action["instance"])
    return done


def refresh(moto) -> dict:
    return moto.client("autoscaling").describe_instance_refreshes(
        AutoScalingGroupName=ASG)["InstanceRefreshes"][0]


def start(moto, lt, version="2", **prefs):
    desired = {"LaunchTemplate": {"LaunchTemplateId": lt, "Version": version}} if lt else None
    kwargs = {"DesiredConfiguration": desired} if desired else {}
    return moto.client("autoscaling").start_instance_refresh(
        AutoScalingGroupName=ASG, Preferences={"InstanceWarmup": 0, **prefs},
        **kwargs)["InstanceRefreshId"]


def drive(moto, max_rounds=20, check=None) -> list[dict]:
    """Complete whatever waits, round after round, until the refresh stops; returns the
    snapshots (states + refresh) taken before each round."""
    seen = []
    for _ in range(max_rounds):
        snap = {"states": states(moto), "refresh": refresh(moto)}
        seen.append(snap)
        if check:
            check(snap)
        if snap["refresh"]["Status"] not in ("Pending", "InProgress", "RollbackInProgress",
                                             "Cancelling"):
            return seen
        if not complete_all(moto):
            return seen
    raise AssertionError(f"refresh did not settle: {seen[-1]}")


def error_code(call) -> str:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"]


# --- replacements --------------------------------------------------------------------------------


def test_replacements_come_from_desired_configuration_through_the_hooks(moto):
    lt = make_group(moto, desired=2)
    old = set(states(moto))
    start(moto, lt, MinHealthyPercentage=50)
    now = states(moto)
    going = [i for i in old if now[i] == "Terminating:Wait"]
    coming = [i for i in now if i not in old]
    assert len(going) == 1 and len(coming) == 1, now
    assert now[coming[0]] == "Pending:Wait"  # waits on its launch hook, like any launch
    assert version_of(moto, coming[0]) == "2" and image_of(moto, coming[0]) == NEW_AMI
    # The old instance stays in Terminating:Wait until its terminate hook is completed.
    assert [a["hook"] for a in moto.pending_actions(going[0])] == [TERMINATE_HOOK]
    drive(moto)
    assert refresh(moto)["Status"] == "Successful"
    final = states(moto)
    assert not set(final) & old and len(final) == 2
    assert all(version_of(moto, i) == "2" and image_of(moto, i) == NEW_AMI for i in final)
    group = moto.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[ASG])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2", "the group takes the desired config"


def test_without_desired_configuration_replaces_with_the_groups_template(moto):
    lt = make_group(moto, desired=1)
    old = set(states(moto))
    start(moto, None, MinHealthyPercentage=0)
    drive(moto)
    assert refresh(moto)["Status"] == "Successful"
    [new] = states(moto)
    assert new not in old and version_of(moto, new) == "1"
    assert lt


def test_min_healthy_percentage_limits_each_batch(moto):
    lt = make_group(moto, desired=4)
    start(moto, lt, MinHealthyPercentage=75)  # 3 of 4 stay in service: one at a time

    def one_at_a_time(snap):
        waiting = [s for s in snap["states"].values() if s.endswith(":Wait")]
        healthy = [s for s in snap["states"].values() if s == "InService"]
        if snap["refresh"]["Status"] == "InProgress":
            assert len(waiting) <= 2 and len(healthy) >= 3, snap
    rounds = drive(moto, check=one_at_a_time)
    assert refresh(moto)["Status"] == "Successful"
    assert len(rounds) >= 5, "four replacements one at a time take at least four rounds"


def test_min_healthy_zero_replaces_everything_at_once(moto):
    lt = make_group(moto, desired=3)
    start(moto, lt, MinHealthyPercentage=0)
    now = states(moto).values()
    assert sorted(now) == ["Pending:Wait"] * 3 + ["Terminating:Wait"] * 3


def test_max_healthy_percentage_launches_before_terminating(moto):
    lt = make_group(moto, desired=2)
    old = set(states(moto))
    start(moto, lt, MinHealthyPercentage=100, MaxHealthyPercentage=200)
    now = states(moto)
    assert all(now[i] == "InService" for i in old), "terminated before the new ones served"
    assert sorted(s for i, s in now.items() if i not in old) == ["Pending:Wait"] * 2
    complete_all(moto, only=[i for i in now if i not in old])  # new ones in service
    now = states(moto)
    assert sorted(now[i] for i in old) == ["Terminating:Wait"] * 2
    drive(moto)
    assert refresh(moto)["Status"] == "Successful" and len(states(moto)) == 2


def test_instance_warmup_holds_the_next_batch(moto):
    lt = make_group(moto, desired=2)
    start(moto, lt, MinHealthyPercentage=50, InstanceWarmup=300)
    complete_all(moto)  # first old terminated, first new in service, still warming up
    assert refresh(moto)["PercentageComplete"] == 0
    assert list(states(moto).values()).count("Terminating:Wait") == 0
    moto.advance_clock(299)
    assert list(states(moto).values()).count("Terminating:Wait") == 0
    moto.advance_clock(2)
    assert refresh(moto)["PercentageComplete"] == 50
    assert list(states(moto).values()).count("Terminating:Wait") == 1


def test_checkpoint_pauses_for_its_delay(moto):
    lt = make_group(moto, desired=4)
    start(moto, lt, MinHealthyPercentage=0, CheckpointPercentages=[25, 100],
          CheckpointDelay=600)
    assert list(states(moto).values()).count("Pending:Wait") == 1, "the canary is one instance"
    complete_all(moto)
    r = refresh(moto)
    assert r["Status"] == "InProgress" and r["PercentageComplete"] == 25
    assert "checkpoint 25%" in r["StatusReason"]
    assert not moto.pending_actions(), "nothing may move during the checkpoint delay"
    moto.advance_clock(599)
    assert not moto.pending_actions()
    moto.advance_clock(2)
    assert len(moto.pending_actions()) == 6  # the other three: 3 launches + 3 terminations
    drive(moto)
    assert refresh(moto)["Status"] == "Successful"


def test_last_checkpoint_below_100_stops_there(moto):
    lt = make_group(moto, desired=4)
    start(moto, lt, MinHealthyPercentage=0, CheckpointPercentages=[50], CheckpointDelay=60)
    drive(moto)
    moto.advance_clock(61)
    r = refresh(moto)
    assert r["Status"] == "Successful" and r["PercentageComplete"] == 100
    assert sorted(version_of(moto, i) for i in states(moto)) == ["1", "1", "2", "2"]


def test_percentage_complete_and_instances_to_update_progress(moto):
    lt = make_group(moto, desired=4)
    start(moto, lt, MinHealthyPercentage=75)
    seen = [(s["refresh"]["PercentageComplete"], s["refresh"]["InstancesToUpdate"])
            for s in drive(moto)]
    assert seen[0] == (0, 4) and seen[-1] == (100, 0)
    assert sorted(seen) == seen, "progress never goes backwards during a refresh"
    assert (50, 2) in seen


def test_bake_time_keeps_it_baking(moto):
    lt = make_group(moto, desired=1)
    start(moto, lt, MinHealthyPercentage=0, BakeTime=120)
    drive(moto)
    assert refresh(moto)["Status"] == "Baking"
    moto.advance_clock(121)
    assert refresh(moto)["Status"] == "Successful"


def test_skip_matching_leaves_instances_already_on_the_target(moto):
    lt = make_group(moto, desired=2)
    start(moto, lt, version="1", MinHealthyPercentage=0, SkipMatching=True)
    assert refresh(moto)["Status"] == "Successful" and not moto.pending_actions()


# --- failure and rollback ------------------------------------------------------------------------


def abandon_first_replacement(moto, old):
    new = [i for i in states(moto) if i not in old]
    complete_all(moto, "ABANDON", only=new[:1])


def test_abandoned_replacement_fails_the_refresh(moto):
    lt = make_group(moto, desired=2)
    old = set(states(moto))
    start(moto, lt, MinHealthyPercentage=50)
    abandon_first_replacement(moto, old)
    r = refresh(moto)
    assert r["Status"] == "Failed" and "ABANDON" in r["StatusReason"]
    complete_all(moto)  # the old instance's terminate hook, already started
    assert refresh(moto)["Status"] == "Failed", "a failed refresh does not resume"


def test_abandoned_replacement_rolls_back_with_auto_rollback(moto):
    lt = make_group(moto, desired=2)
    old = set(states(moto))
    start(moto, lt, MinHealthyPercentage=50, AutoRollback=True)
    abandon_first_replacement(moto, old)
    r = refresh(moto)
    assert r["Status"] == "RollbackInProgress", r
    assert "ABANDON" in r["RollbackDetails"]["RollbackReason"]
    drive(moto)
    r = refresh(moto)
    assert r["Status"] == "RollbackSuccessful", r
    final = states(moto)
    assert len(final) == 2 and all(version_of(moto, i) == "1" for i in final)
    group = moto.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[ASG])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "1"


def test_rollback_by_api_replaces_the_new_instances(moto, asg):
    lt = make_group(moto, desired=2)
    old = set(states(moto))
    start(moto, lt, MinHealthyPercentage=50, InstanceWarmup=100)
    complete_all(moto)  # one replaced: a version-2 instance is in service, warming up
    new = [i for i in states(moto) if i not in old]
    assert [version_of(moto, i) for i in new] == ["2"]
    asg.rollback_instance_refresh(AutoScalingGroupName=ASG)
    r = refresh(moto)
    assert r["Status"] == "RollbackInProgress"
    assert r["RollbackDetails"]["InstancesToUpdateOnRollback"] >= 1
    drive(moto)
    assert refresh(moto)["Status"] == "RollbackInProgress", "the rollback warms up too"
    moto.advance_clock(100)
    assert refresh(moto)["Status"] == "RollbackSuccessful"
    final = states(moto)
    assert not set(final) & set(new) and all(version_of(moto, i) == "1" for i in final)
    assert refresh(moto)["PercentageComplete"] == 0, "goes back down to zero on rollback"


def test_rollback_replacement_abandoned_fails_the_rollback(moto, asg):
    lt = make_group(moto, desired=1)
    start(moto, lt, MinHealthyPercentage=0, InstanceWarmup=100)
    complete_all(moto)  # replaced, warming up: the refresh is still in progress
    asg.rollback_instance_refresh(AutoScalingGroupName=ASG)
    launching = [a["instance"] for a in moto.pending_actions() if a["hook"] == LAUNCH_HOOK]
    complete_all(moto, "ABANDON", only=launching)
    assert refresh(moto)["Status"] == "RollbackFailed"


@pytest.mark.parametrize("case", ["no-desired-configuration", "desired-latest",
                                  "desired-default", "group-latest", "ssm-image"])
def test_rollback_refused_where_aws_refuses_it(moto, asg, case):
    image = "resolve:ssm:/ecs/ami" if case == "ssm-image" else OLD_AMI
    lt = make_group(moto, desired=1, image=image,
                    group_version="$Latest" if case == "group-latest" else "1")
    version = {"desired-latest": "$Latest", "desired-default": "$Default"}.get(case, "2")
    start(moto, None if case == "no-desired-configuration" else lt, version=version,
          MinHealthyPercentage=0)
    assert error_code(lambda: asg.rollback_instance_refresh(AutoScalingGroupName=ASG)) == \
        "IrreversibleInstanceRefresh"
    assert refresh(moto)["Status"] == "InProgress", "a refused rollback changes nothing"
    [call] = moto.calls(action="RollbackInstanceRefresh")
    assert call["status"] == 400


@pytest.mark.parametrize("case", ["no-desired-configuration", "desired-latest", "ssm-image"])
def test_auto_rollback_refused_at_start_where_rollback_is_impossible(moto, asg, case):
    image = "resolve:ssm:/ecs/ami" if case == "ssm-image" else OLD_AMI
    lt = make_group(moto, desired=1, image=image)
    with pytest.raises(ClientError) as err:
        start(moto, None if case == "no-desired-configuration" else lt,
              version="$Latest" if case == "desired-latest" else "2", AutoRollback=True)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "AutoRollback" in err.value.response["Error"]["Message"]


def test_rollback_without_active_refresh_is_refused(moto, asg):
    lt = make_group(moto, desired=1)
    assert error_code(lambda: asg.rollback_instance_refresh(AutoScalingGroupName=ASG)) == \
        "ActiveInstanceRefreshNotFound"
    start(moto, lt, MinHealthyPercentage=0)
    drive(moto)
    assert error_code(lambda: asg.rollback_instance_refresh(AutoScalingGroupName=ASG)) == \
        "ActiveInstanceRefreshNotFound", "a finished refresh cannot be rolled back"


# --- cancel, one at a time, validation, the call log ---------------------------------------------


def test_cancel_waits_for_transitioning_instances(moto, asg):
    lt = make_group(moto, desired=4)
    start(moto, lt, MinHealthyPercentage=75)
    asg.cancel_instance_refresh(AutoScalingGroupName=ASG)
    assert refresh(moto)["Status"] == "Cancelling"
    complete_all(moto)
    assert refresh(moto)["Status"] == "Cancelled"
    assert not moto.pending_actions(), "nothing new starts after a cancel"
    assert sorted(version_of(moto, i) for i in states(moto)) == ["1", "1", "1", "2"]


def test_cancel_without_waiting_is_immediate(moto, asg):
    lt = make_group(moto, desired=2)
    start(moto, lt, MinHealthyPercentage=50)
    asg.cancel_instance_refresh(AutoScalingGroupName=ASG, WaitForTransitioningInstances=False)
    assert refresh(moto)["Status"] == "Cancelled"
    assert error_code(lambda: asg.cancel_instance_refresh(AutoScalingGroupName=ASG)) == \
        "ActiveInstanceRefreshNotFound"


def test_one_active_refresh_per_group(moto, asg):
    lt = make_group(moto, desired=2)
    first = start(moto, lt, MinHealthyPercentage=50)
    assert error_code(lambda: start(moto, lt)) == "InstanceRefreshInProgress"
    calls = moto.calls(action="StartInstanceRefresh")
    assert [c["status"] for c in calls] == [200, 400], "refused calls are logged too"
    assert calls[0]["params"]["AutoScalingGroupName"] == ASG
    drive(moto)
    second = start(moto, lt, MinHealthyPercentage=50)
    found = asg.describe_instance_refreshes(AutoScalingGroupName=ASG)["InstanceRefreshes"]
    assert [r["InstanceRefreshId"] for r in found] == [second, first], "newest first"


@pytest.mark.parametrize("prefs", [
    {"MaxHealthyPercentage": 150},  # Max without Min
    {"MinHealthyPercentage": 10, "MaxHealthyPercentage": 150},  # range over 100
    {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 100},
    {"CheckpointPercentages": [50, 20]},
    {"CheckpointDelay": 60},  # without checkpoints
])
def test_invalid_preferences_are_refused(moto, prefs):
    lt = make_group(moto, desired=1)
    assert error_code(lambda: start(moto, lt, **prefs)) == "ValidationError"
    assert not moto.pending_actions()


def test_unknown_group_is_refused(moto, asg):
    assert error_code(lambda: asg.start_instance_refresh(AutoScalingGroupName="nope")) == \
        "ValidationError"
    assert asg.describe_instance_refreshes(AutoScalingGroupName="nope")["InstanceRefreshes"] \
        == []


def test_launch_hook_timeout_counts_as_abandon(moto):
    lt = make_group(moto, desired=1, heartbeat=1)
    start(moto, lt, MinHealthyPercentage=0)
    # DefaultResult ABANDON after the 1 s heartbeat; the ticker notices without any request.
    from harness.procs import wait_for
    wait_for(lambda: moto.refreshes(ASG)[0]["Status"] == "Failed", timeout=10,
             what="the refresh to fail on the launch hook's timeout")


def test_admin_routes_show_and_advance(moto):
    lt = make_group(moto, desired=2)
    start(moto, lt, MinHealthyPercentage=50, InstanceWarmup=100)
    complete_all(moto)
    with urllib.request.urlopen(f"{moto.admin_url}/refresh?asg={ASG}") as resp:
        [shown] = json.loads(resp.read())["refreshes"]
    assert shown["Status"] == "InProgress" and len(shown["harness"]["launched"]) == 1
    assert shown["harness"]["target"]["number"] == 2
    req = urllib.request.Request(f"{moto.admin_url}/refresh/advance", method="POST",
                                 data=json.dumps({"seconds": 100}).encode())
    with urllib.request.urlopen(req) as resp:
        body = json.loads(resp.read())
    assert body["refreshes"][0]["PercentageComplete"] == 50
