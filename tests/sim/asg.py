#!/usr/bin/env python3
"""The Auto Scaling side of the demo, asked of the emulator (tests/harness/up.py).

    asg.py WORLD_JSON view                 DescribeAutoScalingInstances + lifecycle hook results
    asg.py WORLD_JSON wait-launch SECONDS  wait until the launch hook is no longer pending
    asg.py WORLD_JSON terminate            scale in: TerminateInstanceInAutoScalingGroup
    asg.py WORLD_JSON wait-terminate SECONDS

Reads AWS_ENDPOINT_URL and HARNESS_ADMIN_URL from the environment (up.py's env file).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

import boto3


def admin(path: str):
    with urllib.request.urlopen(os.environ["HARNESS_ADMIN_URL"] + path, timeout=10) as resp:
        return json.loads(resp.read())


def autoscaling(world: dict):
    return boto3.client("autoscaling", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                        region_name=world["region"], aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def hook_results(world: dict) -> list[dict]:
    return [c for c in admin("/completions")["completions"]
            if c.get("instance") == world["instance_id"]]


def pending(world: dict, hook: str) -> bool:
    actions = admin(f"/lifecycle/actions?instance={world['instance_id']}")["actions"]
    return any(a["hook"] == hook for a in actions)


def view(world: dict) -> None:
    found = autoscaling(world).describe_auto_scaling_instances(
        InstanceIds=[world["instance_id"]])["AutoScalingInstances"]
    print(f"{'INSTANCE':<22}{'GROUP':<14}{'LIFECYCLE STATE':<20}HEALTH")
    for inst in found:
        print(f"{inst['InstanceId']:<22}{inst['AutoScalingGroupName']:<14}"
              f"{inst['LifecycleState']:<20}{inst['HealthStatus']}")
    if not found:
        print(f"{world['instance_id']:<22}{world['asg']:<14}{'(not in the group)':<20}-")
    print()
    # BY: "api" = CompleteLifecycleAction (ecs-boot), "timeout" = the hook's DefaultResult.
    print(f"{'LIFECYCLE HOOK':<22}{'RESULT':<10}{'BY':<9}AT")
    for hook in (world["launch_hook"], world["terminate_hook"]):
        done = [c for c in hook_results(world) if c.get("hook") == hook]
        for c in done:
            at = time.strftime("%H:%M:%S", time.localtime(c["time"])) if "time" in c else "?"
            print(f"{hook:<22}{c['result']:<10}{c.get('source', '?'):<9}{at}")
        if not done:
            print(f"{hook:<22}{'pending' if pending(world, hook) else '-':<10}")


def wait(world: dict, hook: str, seconds: float) -> int:
    """Until the hook's action is completed (0), or nothing of it is pending any more (1)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(c.get("hook") == hook for c in hook_results(world)):
            return 0
        if not pending(world, hook):
            print(f"asg.py: no {hook} action pending for {world['instance_id']}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    print(f"asg.py: {hook} still not completed after {seconds:.0f}s", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    world = json.loads(Path(argv[1]).read_text())
    command = argv[2]
    if command == "view":
        view(world)
        return 0
    if command == "terminate":
        autoscaling(world).terminate_instance_in_auto_scaling_group(
            InstanceId=world["instance_id"], ShouldDecrementDesiredCapacity=True)
        return 0
    if command == "wait-launch":
        return wait(world, world["launch_hook"], float(argv[3]))
    if command == "wait-terminate":
        return wait(world, world["terminate_hook"], float(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
