"""Tests of the harness itself: if these fail, no ecs-boot integration result can be trusted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from harness.fake_ecs_agent import parse_ecs_config
from harness.moto_ext import make_client
from harness.procs import wait_for

TTL = "X-aws-ec2-metadata-token-ttl-seconds"


def token(imds, ttl="60"):
    resp = requests.put(imds.url + "/latest/api/token", headers={TTL: ttl})
    resp.raise_for_status()
    return {"X-aws-ec2-metadata-token": resp.text}


def client_under_test(moto, service):
    """A client that the call log counts as "client", like ecs-boot would be."""
    return boto3.client(service, endpoint_url=moto.url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


# --- fake IMDS ------------------------------------------------------------------------------


def test_imds_token_flow_returns_ttl_header_and_requires_token(imds):
    resp = requests.put(imds.url + "/latest/api/token", headers={TTL: "21600"})
    assert resp.status_code == 200
    assert resp.headers[TTL] == "21600"  # aws-config fails with NoTtl without it
    assert requests.get(imds.url + "/latest/meta-data/instance-id").status_code == 401
    bad = {"X-aws-ec2-metadata-token": "nope"}
    assert requests.get(imds.url + "/latest/meta-data/instance-id", headers=bad).status_code == 401
    got = requests.get(imds.url + "/latest/meta-data/instance-id", headers=token(imds))
    assert (got.status_code, got.text) == (200, imds.identity["instanceId"])
    assert got.headers["Content-Type"] == "text/plain"


@pytest.mark.parametrize("headers,status", [
    ({}, 400), ({TTL: "0"}, 400), ({TTL: "21601"}, 400), ({TTL: "x"}, 400),
    ({TTL: "60", "X-Forwarded-For": "10.0.0.1"}, 403),
])
def test_imds_rejects_bad_token_requests(imds, headers, status):
    assert requests.put(imds.url + "/latest/api/token", headers=headers).status_code == status


def test_imds_serves_identity_and_lifecycle_paths(imds):
    h = token(imds)
    doc = requests.get(imds.url + "/latest/dynamic/instance-identity/document", headers=h).json()
    assert {"instanceId", "region", "availabilityZone", "instanceType", "accountId", "imageId",
            "privateIp", "architecture"} <= doc.keys()
    for path in ("autoscaling/target-lifecycle-state", "spot/instance-action",
                 "events/recommendations/rebalance", "no/such/path"):
        assert requests.get(f"{imds.url}/latest/meta-data/{path}", headers=h).status_code == 404
    requests.post(imds.admin_url + "/target-lifecycle-state", json={"state": "InService"})
    requests.post(imds.admin_url + "/spot", json={"action": "terminate"})
    meta = imds.url + "/latest/meta-data/"
    assert requests.get(meta + "autoscaling/target-lifecycle-state", headers=h).text == "InService"
    spot = requests.get(meta + "spot/instance-action", headers=h).json()
    assert spot["action"] == "terminate" and spot["time"].endswith("Z")


def test_imds_fault_injection_delay_and_token_invalidation(imds):
    h = token(imds)
    imds.fail_next(2, status=500, path_prefix="/latest/meta-data/tags")
    tags_url = imds.url + "/latest/meta-data/tags/instance"
    id_url = imds.url + "/latest/meta-data/instance-id"
    assert requests.get(id_url, headers=h).status_code == 200  # other prefix: untouched
    assert [requests.get(tags_url, headers=h).status_code for _ in range(3)] == [500, 500, 200]

    requests.post(imds.admin_url + "/delay", json={"seconds": 0.3})
    start = time.monotonic()
    requests.get(id_url, headers=h)
    assert time.monotonic() - start >= 0.3
    imds.clear_faults()

    requests.post(imds.admin_url + "/invalidate-tokens")
    assert requests.get(id_url, headers=h).status_code == 401
    assert requests.get(id_url, headers=token(imds)).status_code == 200
    log = requests.get(imds.admin_url + "/log").json()
    assert log["token_puts"] == 2
    assert log["requests"][-2:] == [
        {"method": "PUT", "path": "/latest/api/token", "status": 200},
        {"method": "GET", "path": "/latest/meta-data/instance-id", "status": 200}]


def test_imds_tags_disabled_and_late(imds):
    h = token(imds)
    url = imds.url + "/latest/meta-data/tags/instance"
    imds.set_tags({"ecs-boot:cluster": "c1", "Name": "x"}, enabled=False)
    assert requests.get(url, headers=h).status_code == 404
    requests.post(imds.admin_url + "/tags", json={"tags": {"ecs-boot:cluster": "c1", "Name": "x"},
                                                  "visible_after": 0.5})
    assert requests.get(url, headers=h).status_code == 404
    time.sleep(0.55)
    assert requests.get(url, headers=h).text == "ecs-boot:cluster\nName"
    assert requests.get(url + "/ecs-boot:cluster", headers=h).text == "c1"
    assert requests.get(url + "/missing", headers=h).status_code == 404


# --- moto lifecycle extension ---------------------------------------------------------------


def complete(moto, world, result="CONTINUE", hook=None):
    client_under_test(moto, "autoscaling").complete_lifecycle_action(
        AutoScalingGroupName=world.asg, LifecycleHookName=hook or world.launch_hook,
        InstanceId=world.instance_id, LifecycleActionResult=result)


def asg_state(moto, world):
    instances = moto.client("autoscaling").describe_auto_scaling_instances(
        InstanceIds=[world.instance_id])["AutoScalingInstances"]
    return instances[0]["LifecycleState"]


def ec2_state(moto, world):
    reservations = moto.client("ec2").describe_instances(InstanceIds=[world.instance_id])
    return reservations["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_world_mirrors_instance_into_imds(world, imds):
    assert imds.identity["instanceId"] == world.instance_id
    assert imds.tags["aws:autoscaling:groupName"] == world.asg
    assert imds.tags["ecs-boot:cluster"] == world.cluster
    assert imds.tags["ecs-boot:registry-auth"].startswith("s3://")
    assert imds.target_lifecycle_state == "InService"


def test_launch_continue_then_second_completion_is_validation_error(moto, world):
    assert asg_state(moto, world) == "Pending:Wait"
    complete(moto, world)
    assert asg_state(moto, world) == "InService"
    with pytest.raises(ClientError) as err:
        complete(moto, world)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["Error"]["Message"] == (
        f"No active Lifecycle Action found with instance ID {world.instance_id}")
    calls = moto.calls(source="client", action="CompleteLifecycleAction")
    assert [(c["params"]["LifecycleActionResult"], c["status"]) for c in calls] == [
        ("CONTINUE", 200), ("CONTINUE", 400)]
    assert calls[0]["params"]["InstanceId"] == world.instance_id


def test_launch_abandon_terminates_instance(moto, world):
    complete(moto, world, result="ABANDON")
    assert asg_state(moto, world) == "Terminated"
    assert ec2_state(moto, world) == "terminated"


@pytest.mark.world(heartbeat_timeout=1, default_result="ABANDON")
def test_heartbeat_extends_then_timeout_applies_default_result(moto, world):
    time.sleep(0.6)
    client_under_test(moto, "autoscaling").record_lifecycle_action_heartbeat(
        AutoScalingGroupName=world.asg, LifecycleHookName=world.launch_hook,
        InstanceId=world.instance_id)
    time.sleep(0.6)  # 1.2 s after launch: alive only thanks to the heartbeat
    assert asg_state(moto, world) == "Pending:Wait"
    wait_for(lambda: asg_state(moto, world) == "Terminated", 2, what="default result")
    assert moto.completions()[-1]["result"] == "ABANDON"
    assert moto.completions()[-1]["source"] == "timeout"
    assert ec2_state(moto, world) == "terminated"


def test_terminate_waits_for_terminate_hook(moto, world, imds):
    complete(moto, world)
    moto.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=world.instance_id, ShouldDecrementDesiredCapacity=True)
    assert asg_state(moto, world) == "Terminating:Wait"
    assert ec2_state(moto, world) == "running"
    assert imds.target_lifecycle_state == "Terminated"  # what ecs-boot watches for
    complete(moto, world, hook=world.terminate_hook)
    assert asg_state(moto, world) == "Terminated"
    assert ec2_state(moto, world) == "terminated"
    assert [(c["hook"], c["result"]) for c in moto.completions()] == [
        (world.launch_hook, "CONTINUE"), (world.terminate_hook, "CONTINUE")]


def test_scale_in_enters_terminating_wait(moto, world):
    complete(moto, world)
    moto.client("autoscaling").set_desired_capacity(AutoScalingGroupName=world.asg,
                                                    DesiredCapacity=0)
    assert asg_state(moto, world) == "Terminating:Wait"


def test_admin_routes_drive_lifecycle_over_http(moto, world):
    url = moto.admin_url
    body = {"asg": world.asg, "instance": world.instance_id}
    got = requests.get(url + "/lifecycle", params=body).json()
    assert got["state"] == "Pending:Wait" and got["actions"][0]["hook"] == world.launch_hook
    resp = requests.post(url + "/lifecycle", json={**body, "state": "InService"})
    assert resp.json()["state"] == "InService" and resp.json()["actions"] == []
    resp = requests.post(url + "/lifecycle", json={**body, "state": "Terminating:Wait"})
    assert resp.json()["state"] == "Terminating:Wait"
    resp = requests.post(url + "/lifecycle/complete", json={**body, "hook": world.terminate_hook})
    assert resp.status_code == 200
    completions = requests.get(url + "/completions").json()["completions"]
    assert completions[-1]["source"] == "admin"
    assert requests.get(url + "/lifecycle", params=body).json()["state"] == "Terminated"
    assert requests.post(url + "/lifecycle", json=body).status_code == 400


def test_warmed_pending_wait_completes_into_the_warm_pool(moto, world):
    moto.set_lifecycle_state(world.asg, world.instance_id, "Warmed:Pending:Wait")
    complete(moto, world)
    assert asg_state(moto, world) == "Warmed:Stopped"


@pytest.mark.world(creds="ssm")
def test_call_log_records_s3_ssm_ecs_and_resets(moto, world):
    moto.reset_calls()
    ssm = client_under_test(moto, "ssm")
    name = world.registry_auth.removeprefix("ssm:")
    raw = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    assert raw.startswith("kms:")  # moto quirk: SecureString prefixed unless WithDecryption
    value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    assert json.loads(value)["auths"][world.registry]["auth"]
    client_under_test(moto, "s3").list_buckets()
    client_under_test(moto, "ecs").list_container_instances(cluster=world.cluster)
    calls = requests.get(moto.admin_url + "/calls", params={"source": "client"}).json()["calls"]
    assert [(c["service"], c["action"]) for c in calls] == [
        ("ssm", "GetParameter"), ("ssm", "GetParameter"), ("s3", "ListBuckets"),
        ("ecs", "ListContainerInstances")]
    assert calls[1]["params"] == {"Name": name, "WithDecryption": True}
    requests.delete(moto.admin_url + "/calls")
    assert moto.calls() == []


def test_moto_raising_is_an_aws_500_in_the_call_log(moto, monkeypatch):
    """A moto bug answers 500 InternalFailure (as AWS's own faults do) and is recorded with its
    cause, instead of a traceback in werkzeug's log and a client retrying blind."""
    from moto.ecs.models import EC2ContainerServiceBackend

    def broken(self):
        raise RuntimeError("moto bug stand-in")

    monkeypatch.setattr(EC2ContainerServiceBackend, "list_clusters", broken)
    moto.reset_calls()
    ecs = make_client("ecs", moto.url)
    with pytest.raises(ClientError) as err:
        ecs.list_clusters()
    assert err.value.response["Error"]["Code"] == "InternalFailure"
    crashes = moto.app.moto_errors()  # the client retried the 500: one entry per attempt
    assert crashes and {(c["action"], c["status"], c["exception"]) for c in crashes} == {
        ("ListClusters", 500, "RuntimeError: moto bug stand-in")}


def test_fidelity_delete_of_a_gone_capacity_provider_is_a_client_error(moto):
    from harness.terraform import install_moto_fidelity
    install_moto_fidelity()
    moto.reset_calls()
    ecs = make_client("ecs", moto.url)
    ecs.create_capacity_provider(name="cp-gone", autoScalingGroupProvider={
        "autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:"
                               "0:autoScalingGroupName/g"})
    ecs.delete_capacity_provider(capacityProvider="cp-gone")
    with pytest.raises(ClientError) as err:
        ecs.delete_capacity_provider(capacityProvider="cp-gone")
    assert err.value.response["Error"]["Code"] == "ClientException"
    assert "does not exist" in err.value.response["Error"]["Message"]
    assert moto.app.moto_errors() == []


# --- fake ECS agent -------------------------------------------------------------------------


def test_parse_ecs_config_follows_ecs_init_rules():
    text = ' \nECS_CLUSTER="quoted"\n# comment=junk\nno equals\n  ECS_X = a=b \n'
    assert parse_ecs_config(text) == {
        "ECS_CLUSTER": '"quoted"', "# comment": "junk", "ECS_X ": " a=b"}


def test_fake_agent_refuses_to_register_without_cluster(fake_agent, world):
    agent = fake_agent(env={"ECS_CLUSTER": ""})
    assert agent.wait_exit() == 5
    assert "ECS_CLUSTER is not set" in agent.output()
    assert not agent.introspection_open()


def test_fake_agent_exits_1_on_bad_instance_attributes(fake_agent, world, tmp_path):
    config = tmp_path / "ecs.config"
    config.write_text(f'ECS_CLUSTER={world.cluster}\nECS_INSTANCE_ATTRIBUTES={{"a": 1}}\n')
    assert fake_agent(config).wait_exit() == 1


def test_fake_agent_opens_introspection_only_after_registering(moto, fake_agent, world,
                                                               tmp_path):
    config = tmp_path / "ecs.config"
    config.write_text(f"ECS_CLUSTER={world.cluster}\nECS_INSTANCE_ATTRIBUTES="
                      '{"stack":"prod"}\n')
    agent = fake_agent(config, register_delay=1.5)
    agent.wait_admin()
    assert not agent.introspection_open()  # connection refused == not registered yet
    meta = agent.wait_registered()
    assert meta["Cluster"] == world.cluster
    assert meta["Version"] == "Amazon ECS Agent - v1.90.0 (fake)"
    ecs = moto.client("ecs")
    described = ecs.describe_container_instances(
        cluster=world.cluster, containerInstances=[meta["ContainerInstanceArn"]])
    instance = described["containerInstances"][0]
    assert instance["ec2InstanceId"] == world.instance_id  # found through the fake IMDS
    assert {"name": "stack", "value": "prod"} in [
        {"name": a["name"], "value": a.get("value")} for a in instance["attributes"]]


def test_fake_agent_drains_service_tasks_but_not_standalone(moto, fake_agent, world):
    agent = fake_agent(env={"ECS_CLUSTER": world.cluster}, stop_delay=0.3, wait_registered=True)
    (service,) = agent.add_tasks("web", kind="service")
    (standalone,) = agent.add_tasks("batch", kind="standalone")
    assert {t["KnownStatus"] for t in agent.tasks()} == {"RUNNING"}
    ecs = moto.client("ecs")
    arn = agent.state()["container_instance_arn"]
    ecs.update_container_instances_state(cluster=world.cluster, containerInstances=[arn],
                                         status="DRAINING")
    known = lambda task_arn: requests.get(  # noqa: E731
        agent.introspection_url + "/v1/tasks", params={"taskarn": task_arn}).json()["KnownStatus"]
    wait_for(lambda: known(service) == "STOPPED", 5, what="service task to stop")
    time.sleep(0.5)
    assert known(standalone) == "RUNNING"
    ecs.stop_task(cluster=world.cluster, task=standalone)
    wait_for(lambda: known(standalone) == "STOPPED", 5, what="standalone task to stop")
    tasks = agent.tasks()  # STOPPED tasks linger, like the real agent's
    assert sorted(t["Family"] for t in tasks) == ["batch", "web"]
    assert tasks[0]["Containers"][0]["DockerId"]


def test_fake_agent_introspection_can_die_and_come_back(fake_agent, world):
    agent = fake_agent(env={"ECS_CLUSTER": world.cluster}, wait_registered=True)
    agent.set_introspection(False)
    assert not agent.introspection_open()
    assert agent.state()["registered"]
    agent.set_introspection(True)
    assert agent.metadata()[0] == 200


def test_fake_agent_cluster_override(fake_agent, make_world, moto):
    intended = make_world(name="intended")
    stray = make_world(name="stray", mirror=False)
    agent = fake_agent(env={"ECS_CLUSTER": intended.cluster}, cluster_override=stray.cluster,
                       wait_registered=True)
    assert agent.metadata()[1]["Cluster"] == stray.cluster
    assert moto.client("ecs").list_container_instances(cluster=stray.cluster)[
        "containerInstanceArns"]


# --- ecs_boot fixture and up.py -------------------------------------------------------------


def test_ecs_boot_fixture_passes_root_config_and_minimal_env(request, monkeypatch, tmp_path,
                                                             moto, imds):
    script = tmp_path / "fake-ecs-boot"
    script.write_text('#!/bin/sh\necho "$@"\nenv | sort\n')
    script.chmod(0o755)
    monkeypatch.setenv("ECS_BOOT_BIN", str(script))
    monkeypatch.setenv("SECRET_FROM_OUTSIDE", "leak")
    runner = request.getfixturevalue("ecs_boot")
    runner.write_config("[ecs]\ncluster = 'x'\n")
    out = runner.run("check-config", env={"EXTRA": "1"}).stdout.splitlines()
    assert out[0] == f"--root {runner.root} --config {runner.config_path} check-config"
    env = dict(line.split("=", 1) for line in out[1:])
    assert env["AWS_ENDPOINT_URL"] == moto.url
    assert env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == imds.url
    assert env["EXTRA"] == "1" and "SECRET_FROM_OUTSIDE" not in env
    proc = runner.spawn("status")
    assert proc.wait(5) == 0 and "status" in proc.log_path.read_text()


def test_up_writes_env_and_world_then_exits_on_sigterm(tmp_path):
    up = Path(__file__).parent / "harness" / "up.py"
    out = tmp_path / "h"
    proc = subprocess.Popen([sys.executable, str(up), "--dir", str(out), "--world", "demo",
                             "--creds", "ssm"], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: (out / "ready").exists(), 20, what="up.py ready")
        env = dict(line.removeprefix("export ").split("=", 1)
                   for line in (out / "env").read_text().splitlines())
        world = json.loads((out / "world.json").read_text())
        got = requests.get(env["HARNESS_ADMIN_URL"] + "/lifecycle",
                           params={"asg": world["asg"], "instance": world["instance_id"]})
        assert got.json()["state"] == "Pending:Wait"
        assert requests.get(env["IMDS_ADMIN_URL"] + "/state").json()["tags"][
            "ecs-boot:registry-auth"] == world["registry_auth"]
        assert env["AWS_ACCESS_KEY_ID"] == "testing"
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert not (out / "ready").exists()
    assert os.path.exists(out / "env")
