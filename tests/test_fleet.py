"""`ecs-boot-fleet status` against simulated instances: moto's SSM runs the real
`ecs-boot status --json` for each instance against its own --root (harness/ssm_ext.py)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from harness import fleet_sim, ssm_ext
from harness.procs import EcsBoot, base_env
from harness.world import AMI

REPO_ROOT = Path(__file__).resolve().parent.parent

ORDER = ["failed", "error", "timed_out", "offline", "no_ssm", "no_state", "in_progress",
         "healthy"]
FAILURES = [  # (phase, message, hint) as the agent records them
    ("tags", "required tags still missing after 30s: ecs-boot:cluster",
     "tag the ASG with these keys and propagate_at_launch = true"),
    ("credentials", "cannot fetch registry credentials from s3://creds/cfg.json: AccessDenied",
     "check the object exists and the instance role may read it"),
    ("registration", "the ECS agent did not register within 300s",
     "check the ECS agent: `systemctl status ecs`"),
]


@pytest.fixture
def daemon():
    with fleet_sim.Daemon() as d:
        yield d


@pytest.fixture
def fleet(moto, daemon, tmp_path):
    """fleet(plan) registers simulated instances; fleet.run(*args) runs `fleet status` from an
    "operator's machine": credentials and the moto endpoint, no IMDS (a closed port)."""
    binary = Path(os.environ.get("ECS_BOOT_BIN") or REPO_ROOT / "target/debug/ecs-boot")
    if not binary.is_file():
        pytest.skip(f"ecs-boot binary not found at {binary}: run `cargo build`")
    home = tmp_path / "home"
    home.mkdir()
    fleet_binary = binary.resolve().with_name("ecs-boot-fleet")
    if not fleet_binary.is_file():
        pytest.skip(f"ecs-boot-fleet binary not found beside {binary}: run `cargo build`")
    operator = EcsBoot(fleet_binary, tmp_path, base_env(moto.url, "http://127.0.0.1:9", home),
                       host_args=False)

    def simulate(plan: dict[str, dict]):
        fleet_sim.simulate(tmp_path / "instances", plan, daemon, binary=binary.resolve())

    def run(*args, timeout=60):
        return operator.run("status", *args, timeout=timeout)

    simulate.run = run
    return simulate


def make_asg(moto, name: str, size: int) -> list[str]:
    ec2, asg = moto.client("ec2"), moto.client("autoscaling")
    lt = ec2.create_launch_template(LaunchTemplateName=f"{name}-lt", LaunchTemplateData={
        "ImageId": AMI, "InstanceType": "t3.micro"})["LaunchTemplate"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=0, MaxSize=size, DesiredCapacity=size,
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Latest"},
        AvailabilityZones=["us-east-1a"])
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return sorted(i["InstanceId"] for i in group["Instances"])


def plan_200(ids: list[str]) -> tuple[dict, dict]:
    """A plan for 200 instances and the health each should get."""
    kinds = (["healthy"] * 110 + ["failed"] * 30 + ["dead_mid_boot"] * 10
             + ["in_progress"] * 20 + ["offline"] * 12 + ["no_ssm"] * 10 + ["no_state"] * 8)
    assert len(ids) == len(kinds) == 200
    plan, expected = {}, {}
    for n, (iid, kind) in enumerate(zip(ids, kinds)):
        if kind == "failed":
            phase, message, hint = FAILURES[n % len(FAILURES)]
            plan[iid] = {"kind": "failed", "failing_phase": phase, "message": message,
                         "hint": hint}
        elif kind == "offline":
            plan[iid] = {"kind": "healthy", "online": False}
        elif kind == "no_ssm":
            plan[iid] = {"kind": "healthy", "ssm": False}
        else:
            plan[iid] = {"kind": kind}
        expected[iid] = {"dead_mid_boot": "failed"}.get(kind, kind)
    return plan, expected


def table_rows(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    assert lines[0].split()[:5] == ["INSTANCE", "HEALTH", "OUTCOME", "PHASE", "ERROR"]
    rows = []
    for line in lines[1:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_fleet_of_200_from_an_asg(moto, fleet):
    ids = make_asg(moto, "fleet-asg", 200)
    plan, expected = plan_200(ids)
    fleet(plan)
    moto.reset_calls()

    started = time.monotonic()
    table = fleet.run("--asg", "fleet-asg")
    took = time.monotonic() - started
    assert table.returncode == 1, table.stderr
    assert took < 30, took

    rows = table_rows(table.stdout)
    assert [r[0] for r in rows] == sorted(ids, key=lambda i: (ORDER.index(expected[i]), i))
    assert {r[0]: r[1] for r in rows} == expected
    by_id = {r[0]: r for r in rows}
    for iid, spec in plan.items():
        row = by_id[iid]
        if spec["kind"] == "failed":
            assert row[2:4] == ["failed", spec["failing_phase"]], row
            assert row[4] == spec["message"][:59] + ("…" if len(spec["message"]) > 60 else "")
            assert row[5].startswith(spec["hint"][:40]), row
        elif spec["kind"] == "dead_mid_boot":
            assert row[2:4] == ["booting", "registration"], row
            assert "stopped mid-phase" in row[4]
        elif spec["kind"] == "in_progress":
            assert row[2:4] == ["booting", "registration"], row
    assert table.stdout.rstrip().splitlines()[-1] == (
        "200 instances: 40 failed, 12 offline, 10 no_ssm, 8 no_state, 20 in_progress, "
        "110 healthy")
    # stderr is not a terminal here: plain counters, never the bar
    assert "answered" in table.stderr and "\r" not in table.stderr

    sends = moto.calls(service="ssm", action="SendCommand", source="client")
    assert [len(c["params"]["InstanceIds"]) for c in sends] and all(
        len(c["params"]["InstanceIds"]) <= 50 for c in sends)
    sent = [i for c in sends for i in c["params"]["InstanceIds"]]
    reachable = {i for i, s in plan.items() if s.get("online", True) and s.get("ssm", True)}
    assert sorted(sent) == sorted(reachable)  # offline and unmanaged ones are never sent to
    assert len(sends) == 4  # 178 reachable: 50 + 50 + 50 + 28
    for c in sends:
        assert c["params"]["DocumentName"] == "AWS-RunShellScript"
        assert c["params"]["Parameters"]["commands"] == ["ecs-boot status --json"]
        assert c["params"]["MaxErrors"] == "100%"

    as_json = fleet.run("--asg", "fleet-asg", "--json")
    assert as_json.returncode == 1
    doc = json.loads(as_json.stdout)
    assert doc["fleet_schema"] == 1 and doc["total"] == 200 and doc["exit_code"] == 1
    assert doc["counts"] == {"failed": 40, "error": 0, "timed_out": 0, "offline": 12,
                             "no_ssm": 10, "no_state": 8, "in_progress": 20, "healthy": 110}
    assert [i["instance_id"] for i in doc["instances"]] == [r[0] for r in rows]
    for item in doc["instances"]:
        spec = plan[item["instance_id"]]
        assert item["health"] == expected[item["instance_id"]]
        if item["health"] in ("offline", "no_ssm"):
            assert item["status"] is None and item["ssm"] is None
            continue
        # the instance's own document comes through whole
        assert item["status"]["status_schema"] == 1
        assert item["status"]["health"] == ("failed" if spec["kind"] == "dead_mid_boot"
                                            else spec["kind"])
        assert item["ssm"]["status"] == ("Success" if spec["kind"] == "healthy" else "Failed")
        assert item["ssm"]["response_code"] == {"healthy": 0, "in_progress": 3,
                                                "no_state": 4}.get(spec["kind"], 1)
        if spec["kind"] == "failed":
            assert item["phase"] == spec["failing_phase"]
            assert item["error"] == spec["message"] and item["hint"] == spec["hint"]
            assert item["status"]["state"]["error"]["phase"] == spec["failing_phase"]


def test_exit_code_is_three_while_some_are_in_progress_and_zero_when_all_healthy(fleet):
    fleet({"i-0000000000000001": {"kind": "healthy"},
           "i-0000000000000002": {"kind": "in_progress", "running_phase": "containers"},
           "i-0000000000000003": {"kind": "healthy"}})
    some = fleet.run("--instance-ids", "i-0000000000000001,i-0000000000000002",
                     "i-0000000000000003")
    assert some.returncode == 3, some.stdout + some.stderr
    rows = table_rows(some.stdout)
    assert rows[0][:4] == ["i-0000000000000002", "in_progress", "booting", "containers"]
    assert some.stdout.rstrip().endswith("3 instances: 1 in_progress, 2 healthy")

    healthy = fleet.run("--instance-ids", "i-0000000000000001", "i-0000000000000003", "--json")
    assert healthy.returncode == 0
    assert json.loads(healthy.stdout)["counts"]["healthy"] == 2


def test_cluster_targets_are_the_container_instances(moto, fleet):
    ids = make_asg(moto, "cluster-asg", 3)
    ecs = moto.client("ecs")
    ecs.create_cluster(clusterName="prod")
    for iid in ids[:2]:  # the third never joined the cluster
        ecs.register_container_instance(cluster="prod", instanceIdentityDocument=json.dumps(
            {"instanceId": iid, "region": "us-east-1"}))
    fleet({iid: {"kind": "healthy"} for iid in ids})
    result = fleet.run("--cluster", "prod", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert sorted(i["instance_id"] for i in doc["instances"]) == ids[:2]


def test_slow_instances_time_out_without_holding_up_the_rest(fleet):
    fleet({"i-00000000000000f1": {"kind": "healthy", "delay": 60},
           "i-00000000000000f2": {"kind": "healthy"}})
    started = time.monotonic()
    result = fleet.run("--instance-ids", "i-00000000000000f1", "i-00000000000000f2",
                       "--timeout", "3s")
    # Well under the slow instance's 60 s: the deadline, not the instance, ended the wait
    # (loose on purpose: CI machines are loaded).
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    rows = table_rows(result.stdout)
    assert rows[0][:2] == ["i-00000000000000f1", "timed_out"]
    assert "Pending" in rows[0][4] or "InProgress" in rows[0][4]
    assert rows[1][:2] == ["i-00000000000000f2", "healthy"]


def test_an_instance_gone_before_send_command_is_dropped_and_the_batch_resent(moto, fleet):
    fleet({"i-00000000000000c1": {"kind": "healthy"},
           "i-00000000000000c2": {"kind": "healthy", "vanishing": True},
           "i-00000000000000c3": {"kind": "failed"}})
    moto.reset_calls()
    result = fleet.run("--instance-ids", "i-00000000000000c1,i-00000000000000c2,i-00000000000000c3",
                       "--json")
    assert result.returncode == 1
    health = {i["instance_id"]: i["health"] for i in json.loads(result.stdout)["instances"]}
    assert health == {"i-00000000000000c1": "healthy", "i-00000000000000c2": "no_ssm",
                      "i-00000000000000c3": "failed"}
    sends = moto.calls(service="ssm", action="SendCommand", source="client")
    assert [(len(c["params"]["InstanceIds"]), c["status"]) for c in sends] == [(3, 400), (2, 200)]


def test_unknown_targets_and_missing_groups_are_setup_errors(fleet):
    result = fleet.run("--asg", "no-such-asg")
    assert result.returncode == 2
    assert "no-such-asg does not exist" in result.stderr and "hint:" in result.stderr
    assert fleet.run().returncode == 2  # clap: one target is required


def test_output_over_the_inline_limit_is_read_from_s3(moto, fleet, tmp_path):
    # ecs-boot's own status line stays under SSM's 24,000 characters (status/bounds.rs); what
    # comes before it need not: a 30,000-character login banner, as a profile script may print.
    big = {"warnings": [f"warning {n}: " + "x" * 1000 for n in range(40)]}
    fleet({"i-00000000000000b1": {"kind": "healthy", "extra": big}})
    chatty = tmp_path / "ecs-boot-with-banner"
    chatty.write_text(f"#!/bin/sh\nprintf '%030000d\\n' 0\nexec {ssm_ext.default_binary()} \"$@\"\n")
    chatty.chmod(0o755)
    ssm_ext.register("i-00000000000000b1", tmp_path / "instances" / "i-00000000000000b1",
                     binary=str(chatty))
    inline = fleet.run("--instance-ids", "i-00000000000000b1", "--json")
    item = json.loads(inline.stdout)["instances"][0]
    assert item["health"] == "error" and "truncated at 24000" in item["error"]
    assert inline.returncode == 1

    moto.client("s3").create_bucket(Bucket="fleet-output")
    via_s3 = fleet.run("--instance-ids", "i-00000000000000b1", "--json",
                       "--output-s3-bucket", "fleet-output", "--output-s3-key-prefix", "runs")
    assert via_s3.returncode == 0, via_s3.stdout[:2000] + via_s3.stderr
    item = json.loads(via_s3.stdout)["instances"][0]
    assert item["health"] == "healthy"
    assert len(item["status"]["state"]["warnings"]) == 16  # bounded, the last says so
    gets = moto.calls(service="s3", action="GetObject", source="client")
    assert gets and gets[-1]["params"]["Key"].startswith("runs/")


def test_harness_ssm_runs_commands_and_refuses_unmanaged_instances(moto, fleet, tmp_path):
    fleet({"i-00000000000000a1": {"kind": "failed"}})
    ssm = moto.client("ssm")
    with pytest.raises(ssm.exceptions.InvalidInstanceId):
        ssm.send_command(InstanceIds=["i-00000000000000a1", "i-00000000000000zz"],
                         DocumentName="AWS-RunShellScript",
                         Parameters={"commands": ["ecs-boot status --json"]})
    cmd = ssm.send_command(InstanceIds=["i-00000000000000a1"], DocumentName="AWS-RunShellScript",
                           Parameters={"commands": ["echo hi; ecs-boot status --json"]}
                           )["Command"]["CommandId"]
    for _ in range(100):
        inv = ssm.get_command_invocation(CommandId=cmd, InstanceId="i-00000000000000a1")
        if inv["Status"] not in ("Pending", "InProgress"):
            break
        time.sleep(0.05)
    assert (inv["Status"], inv["ResponseCode"]) == ("Failed", 1)
    first, second = inv["StandardOutputContent"].splitlines()
    assert first == "hi" and json.loads(second)["health"] == "failed"
    info = ssm.describe_instance_information()["InstanceInformationList"]
    assert [(i["InstanceId"], i["PingStatus"]) for i in info] == [("i-00000000000000a1",
                                                                   "Online")]


def test_a_throttled_fleet_still_answers_every_instance_and_reads_outputs_from_the_list(
        moto, fleet):
    """SSM at the harness's account-level rates (ThrottlingException beyond a token bucket): the
    collector slows down and retries until every instance has answered; a batch's list of
    invocations carries each whole status document, so no GetCommandInvocation is needed."""
    ids = make_asg(moto, "throttled-asg", 150)
    fleet({iid: {"kind": "failed" if n % 10 == 0 else "healthy"} for n, iid in enumerate(ids)})
    moto.reset_calls()
    # Rates far below the collector's starting pace: it must find them. Three batches of 50.
    moto.throttle("ssm", rate=0.4, burst=1, action="SendCommand", source="client")
    moto.throttle("ssm", rate=1, burst=1, action="ListCommandInvocations", source="client")
    moto.throttle("ssm", rate=1, burst=1, action="GetCommandInvocation", source="client")
    result = fleet.run("--asg", "throttled-asg", "--json", "--timeout", "90s", timeout=120)
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["counts"]["healthy"] == 135 and doc["counts"]["failed"] == 15, doc["counts"]

    calls = moto.calls(service="ssm", source="client")
    refused = [c for c in calls if c.get("fault") == "throttled"]
    assert refused, "the throttle never bit: the test proves nothing"
    assert all(c["error"]["code"] == "ThrottlingException" for c in refused)
    sends = [c for c in calls if c["action"] == "SendCommand" and c["accepted"]]
    assert sorted(i for c in sends for i in c["params"]["InstanceIds"]) == sorted(ids)
    lists = [c for c in calls if c["action"] == "ListCommandInvocations"]
    assert lists and all(c["params"].get("Details") is True for c in lists)
    assert not [c for c in calls if c["action"] == "GetCommandInvocation"]
    assert "SSM calls: " in result.stderr and " throttled" in result.stderr


def test_a_plain_ecs_boot_command_runs_without_a_shell(tmp_path):
    sim = ssm_ext.SimInstance("i-1", str(tmp_path), binary="/bin/true")
    assert ssm_ext.argv_of("ecs-boot status --json", sim) == [
        "/bin/true", "--root", str(tmp_path), "status", "--json"]
    assert ssm_ext.argv_of("echo hi; ecs-boot status --json", sim)[:2] == ["bash", "-c"]
