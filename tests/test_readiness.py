"""Issue 22, readiness for placement: the node registers with `ecs-boot.ready=false` and ecs-boot
sets it `true` (ECS PutAttributes on its own container instance) before its launch CONTINUE; a node
that cannot be marked ready is not put in service."""

from __future__ import annotations

import json

from harness.procs import wait_for
from lifecycle_helpers import client_calls, start_instance, status, wait_state


def attribute_calls(moto):
    return [c for c in moto.calls(source="client") if c["action"] == "PutAttributes"]


def test_ready_is_false_at_registration_and_true_before_the_continue(moto, world, ecs_boot,
                                                                      fake_agent):
    proc, agent = start_instance(ecs_boot, fake_agent)
    attrs = dict(line.split("=", 1) for line in ecs_boot.ecs_config.read_text().splitlines()
                 if line.startswith("ECS_INSTANCE_ATTRIBUTES="))
    assert json.loads(attrs["ECS_INSTANCE_ATTRIBUTES"])["ecs-boot.ready"] == "false"
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    arn = agent.state()["container_instance_arn"]

    calls = attribute_calls(moto)
    assert len(calls) == 1 and calls[0]["accepted"], calls
    sent = calls[0]["params"]
    assert sent["cluster"] == world.cluster
    assert sent["attributes"] == [{"name": "ecs-boot.ready", "value": "true", "targetId": arn}]
    complete = client_calls(moto, "CompleteLifecycleAction")
    assert len(complete) == 1 and calls[0]["time"] < complete[0]["time"]
    # ECS holds it now: a placement constraint on it would place tasks here.
    listed = moto.client("ecs").list_attributes(
        cluster=world.cluster, targetType="container-instance", attributeName="ecs-boot.ready",
        attributeValue="true")["attributes"]
    assert [a.get("targetId", "").rsplit("/", 1)[-1] for a in listed] == [arn.rsplit("/", 1)[-1]]
    phase = next(p for p in status(ecs_boot)["state"]["phases"] if p["name"] == "readiness")
    assert phase["status"] == "ok" and "ecs-boot.ready=true" in phase["detail"]


def test_a_node_that_cannot_be_marked_ready_abandons(moto, world, ecs_boot, fake_agent):
    # Only ecs-boot's call is refused: the (fake) ECS agent puts its own attributes too.
    moto._admin("POST", "/faults", {"service": "ecs", "action": "PutAttributes", "status": 400,
                                    "code": "AccessDeniedException", "source": "client"})
    proc, _ = start_instance(ecs_boot, fake_agent)
    assert proc.wait(40) == 1
    assert [c["result"] for c in moto.completions()] == ["ABANDON"]
    s = status(ecs_boot)["state"]
    assert s["error"]["phase"] == "readiness", s["error"]
    assert "PutAttributes" in s["error"]["message"] and "ecs:PutAttributes" in s["error"]["hint"]
    wait_for(lambda: attribute_calls(moto), timeout=5, what="PutAttributes tried")
