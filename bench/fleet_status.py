#!/usr/bin/env python3
"""Benchmark: `ecs-boot-fleet status` over 500 simulated instances. Target: ≤ 30 s wall time.

moto (in this process, loopback only) plays SSM, Auto Scaling and EC2; harness/ssm_ext.py runs
the real `ecs-boot status --json` for each instance against its own --root. The mix: mostly
healthy, some failed, in progress, offline (SSM ConnectionLost), without SSM, without state.

    python3 bench/fleet_status.py [--instances 500] [--runs 1] [--binary target/release/ecs-boot]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from harness import fleet_sim  # noqa: E402
from harness.moto_ext import MotoServer  # noqa: E402
from harness.world import AMI  # noqa: E402

TARGET_SECONDS = 30.0
# kind, share of the fleet (the rest is healthy)
MIX = [("failed", 0.08), ("in_progress", 0.04), ("offline", 0.04), ("no_ssm", 0.02),
       ("no_state", 0.02)]


def plan_for(ids: list[str]) -> dict:
    kinds: list[str] = []
    for kind, share in MIX:
        kinds += [kind] * round(len(ids) * share)
    kinds += ["healthy"] * (len(ids) - len(kinds))
    plan = {}
    for iid, kind in zip(ids, kinds):
        plan[iid] = ({"kind": "healthy", "online": False} if kind == "offline"
                     else {"kind": "healthy", "ssm": False} if kind == "no_ssm"
                     else {"kind": kind})
    return plan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=500)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--binary", default=os.environ.get("ECS_BOOT_BIN")
                    or str(REPO / "target/debug/ecs-boot"))
    args = ap.parse_args()
    binary = Path(args.binary).resolve()
    if not binary.is_file():
        print(f"no binary at {binary}: cargo build first", file=sys.stderr)
        return 2

    server = MotoServer().start()
    try:
        ec2, asg = server.client("ec2"), server.client("autoscaling")
        lt = ec2.create_launch_template(LaunchTemplateName="bench-lt", LaunchTemplateData={
            "ImageId": AMI, "InstanceType": "t3.micro"})["LaunchTemplate"]
        asg.create_auto_scaling_group(
            AutoScalingGroupName="bench", MinSize=0, MaxSize=args.instances,
            DesiredCapacity=args.instances, AvailabilityZones=["us-east-1a"],
            LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Latest"})
        ids = sorted(i["InstanceId"] for i in asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["bench"])["AutoScalingGroups"][0]["Instances"])
        with tempfile.TemporaryDirectory() as tmp, fleet_sim.Daemon() as daemon:
            fleet_sim.simulate(Path(tmp) / "instances", plan_for(ids), daemon, binary=binary)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp,
                   "AWS_ENDPOINT_URL": server.url, "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                   "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9"}
            walls = []
            for _ in range(args.runs):
                server.reset_calls()
                started = time.monotonic()
                proc = subprocess.run([str(binary.with_name("ecs-boot-fleet")), "status", "--asg", "bench", "--json"],
                                      env=env, capture_output=True, text=True, timeout=300)
                walls.append(time.monotonic() - started)
                doc = json.loads(proc.stdout)
                calls = server.calls(service="ssm", source="client")
                by_action: dict[str, int] = {}
                for c in calls:
                    by_action[c["action"]] = by_action.get(c["action"], 0) + 1
                print(f"run: {walls[-1]:.2f} s  exit {proc.returncode}  counts "
                      + ", ".join(f"{k} {v}" for k, v in doc["counts"].items() if v)
                      + f"  ssm calls {by_action}")
    finally:
        server.stop()
    wall = statistics.median(walls)
    verdict = "ok" if wall <= TARGET_SECONDS else "OVER TARGET"
    print(f"fleet status, {args.instances} instances ({binary.name} {binary.parent.name}): "
          f"{wall:.2f} s wall (median of {len(walls)}; target ≤ {TARGET_SECONDS:.0f} s) "
          f"{verdict}")
    return 0 if wall <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
