#!/usr/bin/env python3
"""Benchmark: `ecs-boot-fleet status` over 5,000 simulated instances with SSM throttling
emulated. Target: ≤ 60 s wall time.

moto (in this process, loopback only) plays SSM, Auto Scaling and EC2; harness/ssm_ext.py runs
the real `ecs-boot status --json` for each instance against its own --root. The mix: mostly
healthy, some failed, in progress, offline (SSM ConnectionLost), without SSM, without state.

SSM throttling: the harness's account-level token buckets (harness/throttle.py) answer
`ThrottlingException` beyond each API's rate. AWS publishes no fixed rate for SendCommand,
ListCommandInvocations or GetCommandInvocation (docs/aws-facts.md), so the rates are ours, stated
in the output and set with `--throttle API=RATE[/BURST]` (`--throttle none`: no throttling).

Memory: peak RSS of `ecs-boot-fleet` (`/usr/bin/time -f %M`), printed per run.

    python3 bench/fleet_status.py [--instances 5000] [--runs 1] [--binary target/release/ecs-boot]
"""

from __future__ import annotations

import argparse
import datetime
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
from harness.throttle import parse_rates  # noqa: E402
from harness.world import AMI  # noqa: E402

TARGET_SECONDS = 60.0
# Emulated account-level rates (calls per second / burst). AWS publishes none for these APIs;
# these are deliberately low, so the collector has to find them.
DEFAULT_THROTTLES = {"SendCommand": (5.0, 10.0), "ListCommandInvocations": (10.0, 20.0),
                     "GetCommandInvocation": (10.0, 20.0)}
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


def parse_throttles(specs: list[str]) -> dict[str, tuple[float, float]]:
    return parse_rates(specs, DEFAULT_THROTTLES)


def emulator_span(server, finished_at: float) -> str:
    """Where the wall time went: from the first SendCommand (at moto) to the last invocation's end
    is the emulated instances running `ecs-boot status` on this one machine (a real fleet runs them
    in parallel, one per instance); from then to the collector's exit is the collector's tail."""
    from moto.ssm.models import ssm_backends  # noqa: PLC0415 (moto's state, this process)

    sends = [c["time"] for c in server.calls(service="ssm", action="SendCommand")
             if c["accepted"]]
    ends = [datetime.datetime.fromisoformat(inv["ExecutionEndDateTime"]).timestamp()
            for backend in ssm_backends.values() for regional in [backend.get("us-east-1")]
            if regional for cmd in regional._commands for inv in cmd.invocations
            if inv.get("ExecutionEndDateTime")]
    if not sends or not ends:
        return "emulator span unknown"
    return (f"emulated instances ran from the first SendCommand for {max(ends) - min(sends):.1f} s; "
            f"collector tail after the last one ended {finished_at - max(ends):.1f} s")


def peak_rss_kib(path: Path) -> int:
    try:
        return int(path.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=5000)
    ap.add_argument("--throttle", action="append", default=[], metavar="API=RATE[/BURST]",
                    help="SSM rate limit (calls/s, burst); repeatable; 'none' turns it off")
    ap.add_argument("--timeout", default="120s", help="ecs-boot-fleet status --timeout")
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
            throttles = parse_throttles(args.throttle)
            print("emulated SSM rates (calls/s, burst; AWS publishes none): "
                  + (", ".join(f"{a} {r:g}/{b:g}" for a, (r, b) in throttles.items())
                     or "no throttling"))
            walls, peaks = [], []
            rss_file = Path(tmp) / "fleet.maxrss"
            for _ in range(args.runs):
                server.reset_calls()
                server.app.throttles.clear()
                for api, (rate, burst) in throttles.items():
                    server.throttle("ssm", rate, burst, action=api, source="client")
                load = os.getloadavg()[0]
                started = time.monotonic()
                proc = subprocess.run(
                    ["/usr/bin/time", "-f", "%M", "-o", str(rss_file),
                     str(binary.with_name("ecs-boot-fleet")), "status", "--asg", "bench",
                     "--json", "--timeout", args.timeout],
                    env=env, capture_output=True, text=True, timeout=600)
                walls.append(time.monotonic() - started)
                span = emulator_span(server, time.time())
                peaks.append(peak_rss_kib(rss_file) / 1024)
                doc = json.loads(proc.stdout)
                calls = server.calls(service="ssm", source="client")
                by_action: dict[str, list[int]] = {}
                for c in calls:
                    n = by_action.setdefault(c["action"], [0, 0])
                    n[0] += 1
                    n[1] += c.get("fault") == "throttled"
                pace = next((line.split("SSM calls: ", 1)[1] for line in proc.stderr.splitlines()
                             if "SSM calls: " in line), "")
                print(f"run: {walls[-1]:.2f} s  exit {proc.returncode}  load {load:.1f}  "
                      f"peak RSS {peaks[-1]:.1f} MiB  counts "
                      + ", ".join(f"{k} {v}" for k, v in doc["counts"].items() if v)
                      + "  ssm calls (throttled) "
                      + ", ".join(f"{a} {n} ({t})" for a, (n, t) in sorted(by_action.items()))
                      + (f"  collector: {pace}" if pace else "") + f"  {span}")
    finally:
        server.stop()
    wall = statistics.median(walls)
    verdict = "ok" if wall <= TARGET_SECONDS else "OVER TARGET"
    print(f"fleet status, {args.instances} instances ({binary.name} {binary.parent.name}): "
          f"{wall:.2f} s wall (median of {len(walls)}; target ≤ {TARGET_SECONDS:.0f} s) "
          f"{verdict}; peak RSS {max(peaks):.1f} MiB")
    return 0 if wall <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
