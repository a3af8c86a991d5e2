#!/usr/bin/env python3
"""Benchmark: a scale-in storm. N simulated instances (real `ecs-boot run` processes, each with its
own fake IMDS and fake ECS agent, as in bench.py's boot row) are in service with 2 service tasks
each; then all N are terminated at once (TerminateInstanceInAutoScalingGroup, back to back) while
the harness throttles the account's Auto Scaling and ECS APIs (token buckets, harness/throttle.py;
AWS publishes no fixed rates for these calls, so ours are stated and configurable).

Checked: every drain completes (terminate hook CONTINUE by ecs-boot, never by the hook's timeout),
AWS calls per termination (accepted calls by ecs-boot, heartbeats and throttled attempts apart),
and the p99 of "last task gone → terminate CONTINUE" (the fake agent's last StopTask at moto to the
completion at moto).

Each instance costs ~12 MiB (ecs-boot) + ~48 MiB (the fake agent, a Python process with boto3);
N = 200 is what issue 23 asks, the default is what this 2-core machine runs beside other work.

    python3 bench/storm.py [--instances 20] [--binary target/release/ecs-boot]
        [--throttle autoscaling=RATE[/BURST]] [--throttle ecs=RATE[/BURST]]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from harness.imds import FakeImds  # noqa: E402
from harness.moto_ext import MotoServer  # noqa: E402
from harness.throttle import parse_rates  # noqa: E402

from bench import pct, read_state  # noqa: E402 (bench/bench.py, beside this file)
from harness.procs import FakeAgent, base_env, free_port, wait_for  # noqa: E402
from harness.world import build_world, follow_lifecycle, trust_dropin  # noqa: E402

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
HEARTBEAT = "RecordLifecycleActionHeartbeat"
TARGET_CALLS = 3
# Emulated account-level rates (calls per second / burst), for ecs-boot's calls only.
DEFAULT_THROTTLES = {"autoscaling": (5.0, 10.0), "ecs": (10.0, 20.0)}


def parse_throttles(specs: list[str]) -> dict[str, tuple[float, float]]:
    return parse_rates(specs, DEFAULT_THROTTLES)


class Instance:
    def __init__(self, i: int, moto: MotoServer, binary: Path, work: Path, deadline: str):
        self.work = work / f"i{i}"
        self.imds = FakeImds(moto_url=moto.url).start()
        self.world = build_world(moto.url, self.imds, name=f"storm{i}", heartbeat_timeout=60)
        follow_lifecycle(self.imds, self.world.instance_id)
        self.imds.life_cycle = "on-demand"
        self.env = base_env(moto.url, self.imds.url, self.work / "home")
        (self.work / "home").mkdir(parents=True, exist_ok=True)
        # Reserved now, bound only when the agent starts: free_port never hands one out twice
        # (the agents' admin ports included, which FakeAgent also draws from it).
        self.port = free_port()
        cfg = self.work / "config.toml"
        cfg.write_text(f'[ecs_agent]\nintrospection_url = "http://127.0.0.1:{self.port}"\n'
                       # 200 Python fake agents start on 2 cores: the last registers minutes
                       # after its ecs.config (ecs-boot's own wait is not what is measured here).
                       f'registration_timeout = "900s"\n[drain]\n'
                       f'deadline = "{deadline}"\n')
        # The trusted channel (user data's config.d) opens the world's locations to its tags.
        (self.work / "config.d").mkdir()
        (self.work / "config.d/05-trust.toml").write_text(trust_dropin([self.world]))
        self.root = self.work / "root"
        self.log = self.work / "ecs-boot.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(binary), "--root", str(self.root), "--config", str(cfg), "run",
                 "--container-scope", f"ecs-boot-storm-{os.getpid()}"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.agent: FakeAgent | None = None

    @property
    def state(self) -> dict | None:
        return read_state(self.root / "var/lib/ecs-boot/state.json")

    def start_agent(self) -> bool:
        if self.agent is None and (self.root / "etc/ecs/ecs.config").exists():
            # A poll every 5 s, not 1: 200 agents polling every second kept the one moto process
            # busy on their polls alone. The storm's latency starts at the agent's last StopTask,
            # so how soon the agent notices DRAINING is not part of it.
            self.agent = FakeAgent(self.env, ["--stop-delay", "0.5", "--poll-interval", "5",
                                              "--keep-alive",
                                              "--config", str(self.root / "etc/ecs/ecs.config"),
                                              "--instance-id", self.world.instance_id],
                                   self.work / "fake-agent.log", self.port)
        return self.agent is not None

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.agent:
            self.agent.kill()
        self.imds.stop()


def booted(instances: list[Instance]) -> bool:
    """Every instance in service; raises at the first that failed for good (no wait to the end)."""
    outcomes = [(x.state or {}).get("outcome") for x in instances]
    if "failed" in outcomes:
        raise RuntimeError(f"instance {outcomes.index('failed')} failed its boot")
    return all(o == "in_service" for o in outcomes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--binary", default=os.environ.get("ECS_BOOT_BIN")
                    or str(REPO / "target/release/ecs-boot"))
    ap.add_argument("--throttle", action="append", default=[], metavar="SERVICE=RATE[/BURST]",
                    help="account-level rate for ecs-boot's calls; 'none' turns it off")
    ap.add_argument("--deadline", default="5m", help="[drain] deadline of each instance")
    ap.add_argument("--wave", type=int, default=25,
                    help="instances booted together before the next wave starts")
    args = ap.parse_args()
    binary = Path(args.binary).resolve()
    throttles = parse_throttles(args.throttle)
    moto = MotoServer().start()
    instances: list[Instance] = []
    try:
        # The instances are stopped in `finally`, after this block: the context manager's
        # removal may meet their last writes, so what it leaves is removed there.
        with tempfile.TemporaryDirectory(prefix="ecs-boot-storm-",
                                         ignore_cleanup_errors=True) as tmp:
            started = time.monotonic()
            try:
                # In waves: the storm is the terminations at once. Booting 200 ecs-boots and 200
                # Python fake agents at once saturates the one moto process (connect timeouts,
                # 340 s registrations) before a drain is ever reached.
                for first in range(0, args.instances, args.wave):
                    wave = [Instance(i, moto, binary, Path(tmp), args.deadline)
                            for i in range(first, min(first + args.wave, args.instances))]
                    instances.extend(wave)
                    wait_for(lambda: all(x.start_agent() for x in wave), timeout=300,
                             interval=0.2, what="every ecs.config written")
                    wait_for(lambda: booted(wave), timeout=600, interval=0.5,
                             what="every instance in service")
            except (TimeoutError, RuntimeError):
                outcomes = Counter((x.state or {}).get("outcome") for x in instances)
                print(f"storm: outcomes {dict(outcomes)}", file=sys.stderr)
                late = next(x for x in instances
                            if not ((s := x.state) and s.get("outcome") == "in_service"))
                print(late.log.read_text(errors="replace")[-3000:], file=sys.stderr)
                if late.agent:
                    print(late.agent.output()[-1500:], file=sys.stderr)
                raise
            boot_s = time.monotonic() - started
            rss = sorted(x.rss_kib() / 1024 for x in instances)
            for n, x in enumerate(instances, 1):
                x.agent.add_tasks("web", kind="service", count=2)
                if n % 25 == 0:
                    print(f"storm: tasks on {n} instances", file=sys.stderr, flush=True)
            time.sleep(1)
            moto.reset_calls()
            for service, (rate, burst) in throttles.items():
                moto.throttle(service, rate, burst, source="client")
            load = os.getloadavg()[0]
            storm_at = time.time()
            asg = moto.client("autoscaling")
            for x in instances:
                asg.terminate_instance_in_auto_scaling_group(
                    InstanceId=x.world.instance_id, ShouldDecrementDesiredCapacity=True)
            ids = {x.world.instance_id for x in instances}

            def done():
                return [c for c in moto.completions()
                        if c["transition"] == TERMINATING and c["instance"] in ids]

            try:
                wait_for(lambda: len(done()) >= len(ids), timeout=900, interval=0.5,
                         what="every terminate hook completed")
            except Exception as err:  # noqa: BLE001 (reported, not raised)
                print(f"storm: not every hook completed: {err}")
            finished = done()
            calls = moto.calls()
            client = [c for c in calls if c["source"] == "client"]
            # The drain's metrics (one PutMetricData per drain while `[metrics] enabled`) are
            # telemetry, counted apart as tests/test_drain.py does: the calls the drain needs
            # are the ones the target bounds.
            telemetry = [c for c in client if c["accepted"] and c["action"] == "PutMetricData"]
            accepted = [c for c in client if c["accepted"]
                        and c["action"] not in (HEARTBEAT, "PutMetricData")]
            refused = [c for c in client if c.get("fault") == "throttled"]
            heartbeats = [c for c in client if c["action"] == HEARTBEAT and c["accepted"]]
            latencies = []
            # Where the time went, per instance, from the storm's start: DRAINING accepted, the
            # last task stopped, the completion accepted.
            phases: dict[str, list[float]] = {"DRAINING set": [], "last task stopped": [],
                                              "hook completed": []}
            for x in instances:
                cluster = x.world.cluster
                update = next((c["time"] for c in client if c["accepted"]
                               and c["action"] == "UpdateContainerInstancesState"
                               and c["params"].get("cluster") == cluster), None)
                stops = [c["time"] for c in calls if c["source"] == "fake-ecs-agent"
                         and c["action"] == "StopTask" and c["params"].get("cluster") == cluster]
                comp = next((c["time"] for c in finished
                             if c["instance"] == x.world.instance_id), None)
                for key, at in (("DRAINING set", update), ("hook completed", comp),
                                ("last task stopped", max(stops) if stops else None)):
                    if at is not None:
                        phases[key].append(at - storm_at)
            for x in instances:
                stops = [c["time"] for c in calls if c["source"] == "fake-ecs-agent"
                         and c["action"] == "StopTask"
                         and c["params"].get("cluster") == x.world.cluster]
                comp = next((c for c in finished if c["instance"] == x.world.instance_id), None)
                if stops and comp:
                    latencies.append(comp["time"] - max(stops))
            by_action: dict[str, int] = {}
            for c in accepted:
                by_action[c["action"]] = by_action.get(c["action"], 0) + 1
            n = len(instances)
            by_source = {}
            for c in finished:
                by_source[(c["result"], c["source"])] = by_source.get(
                    (c["result"], c["source"]), 0) + 1
            timed_out = sum(v for (r, s), v in by_source.items() if s == "timeout")
            # A call is the termination's own the first time its instance makes it; the same call
            # again (a step redone after its throttled retries ran out) is a retry, counted apart.
            owner = {x.world.cluster: i for i, x in enumerate(instances)}
            owner.update({x.world.asg: i for i, x in enumerate(instances)})
            distinct = {(owner.get(c["params"].get("cluster"),
                                   owner.get(c["params"].get("AutoScalingGroupName"))), c["action"])
                        for c in accepted}
            per_termination = len(distinct) / n
            repeated = len(accepted) - len(distinct)
            ok = (len(finished) == n and timed_out == 0
                  and all(c["result"] == "CONTINUE" for c in finished)
                  and per_termination <= TARGET_CALLS)
            print("emulated account rates for ecs-boot's calls (calls/s, burst; AWS publishes "
                  "none): " + (", ".join(f"{s} {r:g}/{b:g}" for s, (r, b) in throttles.items())
                               or "no throttling"))
            print(f"storm: {n} instances (booted in {boot_s:.0f} s; ecs-boot RSS median "
                  f"{rss[len(rss) // 2]:.1f} MiB, max {rss[-1]:.1f}); load {load:.1f} at the "
                  f"storm")
            print(f"storm: {len(finished)}/{n} terminate hooks completed "
                  f"{dict((f'{r} by {s}', v) for (r, s), v in by_source.items())} in "
                  f"{max((c['time'] for c in finished), default=storm_at) - storm_at:.1f} s")
            print(f"storm: AWS calls per termination {per_termination:.2f} (target ≤ "
                  f"{TARGET_CALLS}; retries apart): accepted {by_action}, of which {repeated} a "
                  f"step's retry; heartbeats {len(heartbeats)}; throttled attempts {len(refused)}; "
                  f"telemetry apart: PutMetricData {len(telemetry)}")
            if latencies:
                print(f"storm: last task gone → terminate CONTINUE p50 "
                      f"{pct(latencies, 50) * 1000:.0f} ms, p99 {pct(latencies, 99) * 1000:.0f} ms,"
                      f" max {max(latencies) * 1000:.0f} ms over {len(latencies)} instances")
            print("storm: seconds after the terminations, p50 / p90 / max: " + "; ".join(
                f"{k} {pct(v, 50):.1f} / {pct(v, 90):.1f} / {max(v):.1f}"
                for k, v in phases.items() if v))
            print(f"storm result: {'met' if ok else 'NOT MET'}")
            return 0 if ok else 1
    finally:
        for x in instances:
            x.stop()
        moto.stop()
        for x in instances[:1]:  # what the context manager could not remove under live writers
            shutil.rmtree(x.work.parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
