#!/usr/bin/env python3
"""ecs-boot's performance table: every number the README claims, from one run, against the same
emulators as the tests (moto + harness extensions, fake IMDSv2, fake ECS agent, all on 127.0.0.1),
with the classic user-data peer measured in the same run.

    bench/run [--quick] [--runs N]          # the entry point (venv with awscli, release build)
    python3 bench/bench.py --binary target/release/ecs-boot --aws .cache/bench-venv/bin/aws

Rows (see bench/results/README.md for what each one times and counts):
  ecs.config       spawn -> /etc/ecs/ecs.config on disk: `ecs-boot run` vs a bash user-data
                   script (curl IMDSv2 + `aws s3 cp`); plain, and with 1 ms IMDS + 20 ms S3 latency
  READY=1          spawn -> READY=1 on a NOTIFY_SOCKET
  launch           the fake agent's RegisterContainerInstance -> launch hook CONTINUE (at moto)
  terminate        the fake agent's last StopTask -> terminate hook CONTINUE (at moto)
  API calls        per launch / per termination, counted at moto (source=client)
  idle             VmRSS and CPU (utime+stime) of `ecs-boot run` in service, sampled each second
  binary size      target/release/ecs-boot (+ the zigbuild glibc-2.26 binary if present)
  fleet status     bench/fleet_status.py (5,000 simulated instances over SSM, throttled)

Output: a Markdown table on stdout, bench/results/latest.md and bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO / "tests"))

from harness import imds as harness_imds  # noqa: E402
from harness.imds import FakeImds  # noqa: E402
from harness.moto_ext import MotoServer  # noqa: E402
from harness.procs import FakeAgent, base_env, free_port, http_json, wait_for  # noqa: E402
from harness.world import build_world, follow_lifecycle, trust_dropin  # noqa: E402

MIB = 1024 * 1024
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
# Issue 23's targets.
TARGETS = {
    "ecs_config_ratio": 50.0,  # ecs-boot at least 50x faster than the classic user data
    "launch_p99_s": 0.050,
    "terminate_p99_s": 0.100,
    "calls_per_launch": 3,
    "idle_rss_mib": 8.0,
    "idle_cpu_percent": 0.05,
    "binary_mib": 8.0,
    "fleet_s": 60.0,
    "fleet_instances": 5000,
    "storm_instances": 200,
    "storm_calls_per_termination": 3,
}
# Calls that are not "the launch's calls": listed separately (issue 12).
HEARTBEAT = "RecordLifecycleActionHeartbeat"

# The classic way (what user data does without ecs-boot): IMDSv2 token, two tags, `aws s3 cp`,
# printf. The credentials object is passed on as-is (tr drops newlines), as such scripts do.
CLASSIC_SCRIPT = r"""#!/bin/bash
set -euo pipefail
IMDS="$AWS_EC2_METADATA_SERVICE_ENDPOINT"
OUT="$1"
TOKEN=$(curl -sf -X PUT "$IMDS/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 21600")
md() { curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/latest/meta-data/$1"; }
CLUSTER=$(md tags/instance/ecs-boot:cluster)
AUTH=$(md tags/instance/ecs-boot:registry-auth)
aws --endpoint-url "$AWS_ENDPOINT_URL" s3 cp --quiet "$AUTH" "$OUT.creds"
AUTH_DATA=$(tr -d '\n' < "$OUT.creds")
rm -f "$OUT.creds"
umask 077
printf 'ECS_CLUSTER=%s\nECS_ENGINE_AUTH_TYPE=dockercfg\nECS_ENGINE_AUTH_DATA=%s\n' \
  "$CLUSTER" "$AUTH_DATA" > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
"""


# --- statistics --------------------------------------------------------------------------------


def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 50 samples is the largest but none)."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def summary(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "p10": pct(xs, 10), "p90": pct(xs, 90), "p99": pct(xs, 99),
            "mean": statistics.fmean(xs)}


def ms(x: float) -> str:
    x *= 1000
    return f"{x:.0f} ms" if x >= 100 else f"{x:.1f} ms" if x >= 10 else f"{x:.2f} ms"


def secs(x: float) -> str:
    return f"{x:.2f} s" if x >= 1 else ms(x)


def spread(s: dict, fmt=secs) -> str:
    if not s.get("n"):
        return "no samples"
    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


# --- processes ---------------------------------------------------------------------------------


class Notify:
    """A fake systemd NOTIFY_SOCKET; records when READY=1 arrives (perf_counter)."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.ready_at: float | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._recv, daemon=True)
        self._thread.start()

    def _recv(self):
        while not self._stop and self.ready_at is None:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if b"READY=1" in data.split(b"\n"):
                self.ready_at = time.perf_counter()

    def close(self):
        self._stop = True
        self._thread.join(1)
        self.sock.close()
        self.path.unlink(missing_ok=True)


def spawn_until_file(argv, env, target: Path, log: Path, notify: Notify | None = None,
                     timeout: float = 60) -> tuple[subprocess.Popen, float, float]:
    """Start argv; poll (0.5 ms) until `target` exists. Returns (proc, t0, t_file) in
    perf_counter seconds."""
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    while not target.exists():
        now = time.perf_counter()
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited {proc.returncode} before writing {target}:\n"
                               + log.read_text(errors="replace")[-2000:])
        if now - t0 > timeout:
            proc.kill()
            raise RuntimeError(f"{target} not written within {timeout}s")
        time.sleep(0.0005)
    return proc, t0, time.perf_counter()


def docker_isolation(binary: Path) -> dict:
    """Keep every `ecs-boot run` of the bench away from other people's containers.

    With no [[container]] configured, run still talks to the Docker engine when one may exist
    (DOCKER_HOST or /var/run/docker.sock): at boot it removes containers labelled as its own that
    the config no longer names, and the drain stops them. On a shared machine those can be a
    simulated instance's (label io.ecs-boot.managed=true). So: a scope of our own where the binary
    has `run --container-scope` (the engine is still asked, as on an instance); otherwise no engine
    at all (DOCKER_HOST at nothing, engine_wait 10 ms)."""
    probe = subprocess.run([str(binary), "run", "--container-scope", "probe", "--help"],
                           capture_output=True, text=True)
    if probe.returncode == 0:
        return {"mode": "scope", "args": ["--container-scope", f"ecs-boot-bench-{os.getpid()}"],
                "env": {}, "config": ""}
    return {"mode": "no-engine", "args": [],
            "env": {"DOCKER_HOST": "unix:///nonexistent/ecs-boot-bench/docker.sock"},
            "config": '[docker]\nengine_wait = "10ms"\n'}


def bench_config(intro_port: int, poll: str = "1s", extra: str = "") -> str:
    return (f'[ecs_agent]\nintrospection_url = "http://127.0.0.1:{intro_port}"\n'
            f'registration_timeout = "60s"\n[drain]\npoll_interval = "{poll}"\n{extra}')


def write_config(cfg: Path, text: str, world) -> None:
    """The config file, and beside it the trusted channel (config.d, as user data writes it)
    opening the world's credential locations to its tags: without it ecs-boot fails closed."""
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text)
    (cfg.parent / "config.d").mkdir(exist_ok=True)
    (cfg.parent / "config.d/05-trust.toml").write_text(trust_dropin([world]))


def read_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# --- the bench ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, args):
        self.args = args
        self.source_binary = Path(args.binary).resolve()
        self.aws = Path(args.aws).resolve() if args.aws else None
        self.tmp = Path(tempfile.mkdtemp(prefix="ecs-boot-bench-"))
        # A copy: a concurrent cargo build must not swap the binary halfway through the run.
        self.binary = self.tmp / "ecs-boot"
        shutil.copy2(self.source_binary, self.binary)
        # Written back to disk, as an AMI's binary is: a just-copied file's pages are dirty in the
        # page cache, and the kernel cannot drop dirty pages (src/util/pageout.rs would not work).
        with open(self.binary, "rb") as f:
            os.fsync(f.fileno())
        fleet_binary = self.source_binary.with_name("ecs-boot-fleet")
        if fleet_binary.is_file():  # the operator's binary, beside it (bench/fleet_status.py)
            shutil.copy2(fleet_binary, self.tmp / "ecs-boot-fleet")
        self.docker = docker_isolation(self.binary)
        self.moto = MotoServer().start()
        self.results: dict = {}
        self.log = lambda msg: print(f"[bench {time.strftime('%H:%M:%S')}] {msg}",
                                     file=sys.stderr, flush=True)

    def close(self):
        self.moto.stop()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    @staticmethod
    def time_argv(out: Path) -> list[str]:
        """Peak RSS of a process tree (KiB, the largest process: for the user data, the aws CLI)
        through /usr/bin/time. Not os.wait4 from here: a child spawned by this 200+ MiB Python
        process inherits its RSS high-water mark across exec, so ru_maxrss would be ours."""
        return ["/usr/bin/time", "-f", "%M", "-o", str(out)] if Path("/usr/bin/time").exists() \
            else []

    def env(self, imds: FakeImds, home: Path) -> dict:
        home.mkdir(parents=True, exist_ok=True)
        # ECS_BOOT_LOG passes through: `ECS_BOOT_LOG=debug bench/bench.py --keep` to look inside.
        passed = {k: os.environ[k] for k in ("ECS_BOOT_LOG",) if k in os.environ}
        return {**base_env(self.moto.url, imds.url, home), **self.docker["env"], **passed}

    def fresh_world(self) -> tuple[FakeImds, object]:
        """A fresh moto (reset) and IMDS with one instance in Pending:Wait (build_world)."""
        self.moto.reset()
        imds = FakeImds(moto_url=self.moto.url).start()
        world = build_world(self.moto.url, imds)
        follow_lifecycle(imds, world.instance_id)
        return imds, world

    # -- ecs.config: ecs-boot vs the classic user data -----------------------------------------

    def ecs_config(self, runs: int, latency: bool, base: Path | None = None) -> dict:
        """base: where the scratch roots go (default: the bench's temp dir on disk; /dev/shm
        makes every fsync free, which isolates run's fsync cost)."""
        label = "latency" if latency else "tmpfs" if base else "plain"
        base = base or self.tmp
        imds, world = self.fresh_world()
        try:
            if latency:
                imds.set_delay(0.001)
                status, body = http_json("POST", self.moto.admin_url + "/faults",
                                         {"service": "s3", "delay": 0.02})
                assert status == 200, body
            script = self.tmp / "classic-user-data.sh"
            script.write_text(CLASSIC_SCRIPT)
            boot_t, boot_ready, boot_rss, classic_t, classic_rss, render_t = [], [], [], [], [], []
            for i in range(runs + 1):  # the first of each is a warm-up (page cache, .pyc)
                work = base / f"cfg-{label}-{i}"
                env = self.env(imds, work / "home")
                cfg = work / "config.toml"
                write_config(cfg, bench_config(free_port(), extra=self.docker["config"]), world)
                root = work / "root"
                notify = Notify(work / "notify.sock")
                try:
                    proc, t0, t_file = spawn_until_file(
                        [str(self.binary), "--root", str(root), "--config", str(cfg), "run",
                         *self.docker["args"]],
                        {**env, "NOTIFY_SOCKET": str(notify.path)},
                        root / "etc/ecs/ecs.config", work / "ecs-boot.log", notify)
                    wait_for(lambda: notify.ready_at, timeout=10, interval=0.001,
                             what="READY=1")
                    rss = _status_field(proc.pid, "VmHWM")  # its own peak, since exec
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(5)
                finally:
                    notify.close()
                # The same fetch and render to stdout, without run's state file: the difference
                # is run's bookkeeping before ecs.config (state.json writes, each fsynced).
                t1 = time.perf_counter()
                out_r = subprocess.run([str(self.binary), "--root", str(work / "render-root"),
                                        "--config", str(cfg), "render"], env=env,
                                       capture_output=True, timeout=60)
                t_render = time.perf_counter() - t1
                if out_r.returncode != 0:
                    raise RuntimeError(f"ecs-boot render failed: {out_r.stderr[-1000:]!r}")
                if i:
                    render_t.append(t_render)
                    boot_t.append(t_file - t0)
                    boot_ready.append(notify.ready_at - t0)
                    boot_rss.append(rss / 1024)
                if self.aws is None:
                    continue
                cenv = {**env, "PATH": f"{self.aws.parent}:{env['PATH']}"}
                out = work / "classic" / "ecs.config"
                out.parent.mkdir()
                rss_file = work / "classic.maxrss"
                proc, t0, t_file = spawn_until_file(
                    [*self.time_argv(rss_file), "bash", str(script), str(out)], cenv, out,
                    work / "classic.log")
                proc.wait(30)
                rss = int(rss_file.read_text().split()[-1]) if rss_file.exists() else 0
                if proc.returncode != 0:
                    raise RuntimeError("classic user data failed:\n"
                                       + (work / "classic.log").read_text())
                if i:
                    classic_t.append(t_file - t0)
                    classic_rss.append(rss / 1024)
            # The two files say the same thing (same cluster, same credentials).
            text = out.read_text() if self.aws else ""
            assert not self.aws or f"ECS_CLUSTER={world.cluster}" in text, text
        finally:
            http_json("DELETE", self.moto.admin_url + "/faults")
            imds.stop()
        res = {
            "runs": runs, "latency_injected": {"imds_s": 0.001, "s3_s": 0.02} if latency else None,
            "scratch": str(base),
            "ecs_boot_s": summary(boot_t), "ecs_boot_ready_s": summary(boot_ready),
            "ecs_boot_render_s": summary(render_t),
            "ecs_boot_peak_rss_mib": summary(boot_rss),
            "classic_s": summary(classic_t), "classic_peak_rss_mib": summary(classic_rss),
            "samples": {"ecs_boot_s": boot_t, "ecs_boot_ready_s": boot_ready,
                        "ecs_boot_render_s": render_t,
                        "classic_s": classic_t},
        }
        if classic_t:
            res["ratio"] = statistics.median(classic_t) / statistics.median(boot_t)
        self.log(f"ecs.config ({label}): ecs-boot {spread(res['ecs_boot_s'])}, classic "
                 f"{spread(res['classic_s'])}, ratio {res.get('ratio', 0):.1f}x")
        return res

    # -- launch and termination, one fresh world per boot ---------------------------------------

    def boot_cycle(self, i: int, stop_delay: float = 0.5, tasks: int = 2,
                   register_delay: float = 0.0) -> dict:
        imds, world = self.fresh_world()
        work = self.tmp / f"boot-{i}"
        env = self.env(imds, work / "home")
        port = free_port()
        cfg = work / "config.toml"
        write_config(cfg, bench_config(port, extra=self.docker["config"]), world)
        root = work / "root"
        state_file = root / "var/lib/ecs-boot/state.json"
        imds.reset_log()
        self.moto.reset_calls()
        agent = None
        proc = None
        try:
            proc, _, _ = spawn_until_file(
                [str(self.binary), "--root", str(root), "--config", str(cfg), "run",
                         *self.docker["args"]], env,
                root / "etc/ecs/ecs.config", work / "ecs-boot.log")
            # As ecs.service would: the agent starts once ecs.config is on disk.
            agent = FakeAgent(env, ["--register-delay", str(register_delay),
                                    "--stop-delay", str(stop_delay),
                                    "--config", str(root / "etc/ecs/ecs.config"),
                                    "--instance-id", world.instance_id],
                              work / "fake-agent.log", port)

            def completion(transition):
                return next((c for c in self.moto.completions()
                             if c["instance"] == world.instance_id
                             and c["transition"] == transition), None)

            launch = wait_for(lambda: completion(LAUNCHING), timeout=60, interval=0.02,
                              what="launch hook completion")
            state = wait_for(lambda: (s := read_state(state_file))
                             and s.get("outcome") == "in_service" and s, timeout=20,
                             what="in_service")
            launch_calls = self.moto.calls(source="client")
            imds_launch = http_json("GET", imds.admin_url + "/log")[1]
            reg = self.moto.calls(action="RegisterContainerInstance", source="fake-ecs-agent")
            intro_open = _agent_log_time(agent.output(), "introspection listening")
            hook = next(h for h in state["hooks"] if h["transition"] == "launch")

            # Termination: tasks running, then scale-in puts the instance in Terminating:Wait.
            agent.add_tasks("web", kind="service", count=tasks)
            imds.reset_log()
            mark = len(self.moto.calls())
            self.moto.client("autoscaling").terminate_instance_in_auto_scaling_group(
                InstanceId=world.instance_id, ShouldDecrementDesiredCapacity=True)
            term = wait_for(lambda: completion(TERMINATING), timeout=60, interval=0.02,
                            what="terminate hook completion")
            state = wait_for(lambda: (s := read_state(state_file))
                             and s.get("outcome") == "terminated" and s, timeout=20,
                             what="terminated")
            all_calls = self.moto.calls()[mark:]
            term_calls = [c for c in all_calls if c["source"] == "client"]
            imds_term = http_json("GET", imds.admin_url + "/log")[1]
            stops = [c["time"] for c in all_calls
                     if c["source"] == "fake-ecs-agent" and c["action"] == "StopTask"]
            thook = next(h for h in state["hooks"] if h["transition"] == "terminate")
            assert launch["result"] == "CONTINUE" and term["result"] == "CONTINUE", (launch, term)
            assert len(stops) == tasks, stops
            return {
                "register_delay_s": register_delay,
                "launch_s": launch["time"] - reg[0]["time"],
                "launch_from_introspection_s": (launch["time"] - intro_open
                                                if intro_open else None),
                "launch_latency_ms": hook.get("latency_ms"),
                "terminate_s": term["time"] - max(stops),
                "terminate_latency_ms": thook.get("latency_ms"),
                "launch_calls": [c["action"] for c in launch_calls],
                "launch_ecs_calls": [c["action"] for c in launch_calls if c["service"] == "ecs"],
                "launch_imds": {"requests": len(imds_launch["requests"]),
                                "token_puts": imds_launch["token_puts"]},
                "terminate_calls": [c["action"] for c in term_calls],
                "terminate_imds": {"requests": len(imds_term["requests"]),
                                   "token_puts": imds_term["token_puts"]},
            }
        finally:
            if proc and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            if agent:
                agent.kill()
            imds.stop()

    def boots(self, runs: int) -> dict:
        cycles = []
        for i in range(runs):
            # A real agent registers seconds after ecs.config (ecs-init loads its image); the
            # fake one in well under one. Delays of 0-3 s in 0.5 s steps land the registration
            # at every point of ecs-boot's introspection poll, including its 1 s cap.
            cycles.append(self.boot_cycle(i, register_delay=(i % 7) * 0.5))
            c = cycles[-1]
            self.log(f"boot {i + 1}/{runs}: registration->CONTINUE {ms(c['launch_s'])}, "
                     f"last task gone->CONTINUE {ms(c['terminate_s'])}, "
                     f"calls {len(c['launch_calls'])}+{len(c['terminate_calls'])}")

        def counted(key):
            per = [[a for a in c[key] if a != HEARTBEAT] for c in cycles]
            by_action: dict[str, int] = {}
            for a in per[0]:
                by_action[a] = by_action.get(a, 0) + 1
            return {"median": statistics.median(len(p) for p in per),
                    "min": min(len(p) for p in per), "max": max(len(p) for p in per),
                    "first_boot_by_action": by_action,
                    "heartbeats": sum(c[key].count(HEARTBEAT) for c in cycles)}

        def imds_counts(key):
            return {k: statistics.median(c[key][k] for c in cycles)
                    for k in ("requests", "token_puts")}

        intro = [c["launch_from_introspection_s"] for c in cycles
                 if c["launch_from_introspection_s"] is not None]
        return {
            "runs": runs,
            "launch_s": summary([c["launch_s"] for c in cycles]),
            "launch_from_introspection_s": summary(intro),
            "launch_latency_ms": summary([c["launch_latency_ms"] for c in cycles
                                          if c["launch_latency_ms"] is not None]),
            "terminate_s": summary([c["terminate_s"] for c in cycles]),
            "terminate_latency_ms": summary([c["terminate_latency_ms"] for c in cycles
                                             if c["terminate_latency_ms"] is not None]),
            "launch_calls": counted("launch_calls"),
            "launch_ecs_calls": sum(len(c["launch_ecs_calls"]) for c in cycles),
            "terminate_calls": counted("terminate_calls"),
            "launch_imds_median": imds_counts("launch_imds"),
            "terminate_imds_median": imds_counts("terminate_imds"),
            "cycles": cycles,
        }

    # -- idle ------------------------------------------------------------------------------------

    def idle(self, seconds: int, life_cycle: str = "on-demand") -> dict:
        """life_cycle: what IMDS says the instance is (instance-life-cycle); only a spot instance
        reads the spot notice, every 5 s."""
        imds, world = self.fresh_world()
        imds.life_cycle = life_cycle
        work = self.tmp / f"idle-{life_cycle}"
        env = self.env(imds, work / "home")
        port = free_port()
        cfg = work / "config.toml"
        # The shipped defaults (drain poll 5 s): an instance in service, as it spends its life.
        write_config(cfg, f'[ecs_agent]\nintrospection_url = "http://127.0.0.1:{port}"\n'
                     + self.docker["config"], world)
        root = work / "root"
        agent = proc = None
        try:
            proc, _, _ = spawn_until_file(
                [str(self.binary), "--root", str(root), "--config", str(cfg), "run",
                         *self.docker["args"]], env,
                root / "etc/ecs/ecs.config", work / "ecs-boot.log")
            agent = FakeAgent(env, ["--config", str(root / "etc/ecs/ecs.config"),
                                    "--instance-id", world.instance_id],
                              work / "fake-agent.log", port)
            wait_for(lambda: (s := read_state(root / "var/lib/ecs-boot/state.json"))
                     and s.get("outcome") == "in_service", timeout=60, what="in_service")
            time.sleep(1)
            imds.reset_log()
            self.moto.reset_calls()
            rss, t_start = [], time.monotonic()
            cpu_start = _cpu_ns(proc.pid)
            while time.monotonic() - t_start < seconds:
                rss.append(_vm_rss_kib(proc.pid) / 1024)
                time.sleep(1)
            elapsed = time.monotonic() - t_start
            cpu = (_cpu_ns(proc.pid) - cpu_start) / 1e9
            calls = self.moto.calls(source="client")
            imds_log = http_json("GET", imds.admin_url + "/log")[1]
            peak_kib = _status_field(proc.pid, "VmHWM")
            # Where the RSS is: anonymous (heap, stacks) vs file-backed (the binary's own pages,
            # and the shared libraries': libc, libm, ld.so).
            split = {k: _status_field(proc.pid, k) / 1024 for k in ("RssAnon", "RssFile")}
            split["binary"] = _mapped_rss_kib(proc.pid, self.binary) / 1024
            threads = _status_field(proc.pid, "Threads")
        finally:
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait(5)
            if agent:
                agent.kill()
            imds.stop()
        res = {"seconds": round(elapsed, 1), "rss_mib": summary(rss),
               "peak_rss_since_start_mib": peak_kib / 1024,
               "rss_anon_mib": split["RssAnon"], "rss_file_mib": split["RssFile"],
               "rss_binary_mib": split["binary"],
               "threads": threads,
               "cpu_seconds": cpu, "cpu_percent": 100 * cpu / elapsed,
               "aws_calls": len(calls), "imds_requests": len(imds_log["requests"]),
               "imds_token_puts": imds_log["token_puts"], "life_cycle": life_cycle}
        self.log(f"idle {elapsed:.0f}s: RSS {res['rss_mib']['median']:.1f} MiB "
                 f"(max {res['rss_mib']['max']:.1f}), CPU {res['cpu_percent']:.3f} %")
        return res

    # -- binary, fleet ----------------------------------------------------------------------------

    def binary_size(self) -> dict:
        res = {}
        for label, path in (("release", self.source_binary),
                            ("zigbuild-glibc-2.26",
                             REPO / "target/x86_64-unknown-linux-gnu/release/ecs-boot")):
            if path.is_file():
                info = subprocess.run(["file", "-b", str(path)], capture_output=True,
                                      text=True).stdout.strip() if shutil.which("file") else ""
                res[label] = {"path": str(path.relative_to(REPO)) if path.is_relative_to(REPO)
                              else str(path), "bytes": path.stat().st_size,
                              "mib": path.stat().st_size / MIB,
                              "stripped": "not stripped" not in info and "stripped" in info,
                              "mtime": datetime.datetime.fromtimestamp(
                                  path.stat().st_mtime).isoformat(timespec="seconds"),
                              "version": _version_of(path)}
        zig, rel = res.get("zigbuild-glibc-2.26"), res.get("release")
        if zig and rel and zig["version"] != rel["version"]:
            # Left over from another commit's RPM build: shown, never counted.
            zig["stale"] = True
        return res

    def fleet(self) -> dict:
        script = REPO / "bench/fleet_status.py"
        if self.args.skip_fleet:
            return {"measured": False, "reason": "skipped (--skip-fleet)"}
        if not script.is_file():
            return {"measured": False, "reason": "bench/fleet_status.py does not exist yet"}
        n = self.args.fleet_instances
        self.log(f"fleet status: running bench/fleet_status.py ({n} instances, SSM throttled)")
        started = time.monotonic()
        try:
            out = subprocess.run([sys.executable, str(script), "--instances", str(n),
                                  "--binary", str(self.binary), "--timeout", "600s"],
                                 capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            return {"measured": False, "reason": "bench/fleet_status.py ran over 1800 s"}
        total = time.monotonic() - started
        m = re.search(r"fleet status, (\d+) instances .*?: ([\d.]+) s wall", out.stdout)
        if not m:
            return {"measured": False, "reason": f"bench/fleet_status.py exited {out.returncode}"
                    f" without a result: {(out.stderr or out.stdout)[-400:]}"}
        runs = [line for line in out.stdout.splitlines() if line.startswith("run:")]
        rates = next((line.split(": ", 1)[1] for line in out.stdout.splitlines()
                      if line.startswith("emulated SSM rates")), "")
        peak = re.search(r"peak RSS ([\d.]+) MiB\s*$", out.stdout.strip())
        return {"measured": True, "instances": int(m.group(1)), "wall_s": float(m.group(2)),
                "script_total_s": total, "detail": runs, "rates": rates,
                "peak_rss_mib": float(peak.group(1)) if peak else None}


def _version_of(binary: Path) -> str:
    """`ecs-boot --version` (it carries the commit), or "" if it does not run."""
    try:
        return subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def run_storm(binary: Path, instances: int) -> dict:
    """bench/storm.py: `instances` terminating at once under account-level throttles."""
    try:
        out = subprocess.run([sys.executable, str(REPO / "bench/storm.py"), "--instances",
                              str(instances), "--binary", str(binary)],
                             capture_output=True, text=True, timeout=2400)
    except subprocess.TimeoutExpired:
        return {"summary": "not measured", "detail": "bench/storm.py ran over 2400 s",
                "verdict": "**not measured**"}
    lines = [line for line in out.stdout.splitlines() if line.startswith(("storm", "emulated"))]
    p99 = re.search(r"p99 (\d+) ms", out.stdout)
    calls = re.search(r"AWS calls per termination ([\d.]+)", out.stdout)
    met = "storm result: met" in out.stdout
    if not lines:
        said = out.stderr or out.stdout
        outcomes = next((line for line in said.splitlines() if line.startswith("storm: outcomes")),
                        "")
        return {"summary": "not measured", "detail": f"{outcomes} {said[-400:]}".strip(),
                "verdict": "**not measured**"}
    wanted = TARGETS["storm_instances"]
    if not met:
        verdict = "**not met**" + (f" (ran {instances} of {wanted})" if instances < wanted else "")
    elif instances < wanted:
        verdict = f"**not met**: ran {instances} of {wanted}; those met every check"
    else:
        verdict = "met"
    return {"instances": instances, "detail": "; ".join(lines), "verdict": verdict,
            "summary": (f"{instances} instances: p99 {p99.group(1) if p99 else '?'} ms, "
                        f"{calls.group(1) if calls else '?'} calls per termination")}


def _agent_log_time(text: str, needle: str) -> float | None:
    """The fake agent logs with asctime (local time, ms): the epoch time of the first line with
    `needle`."""
    for line in text.splitlines():
        if needle in line:
            try:
                stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            except ValueError:
                return None
            return stamp.timestamp()
    return None


def _status_field(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _mapped_rss_kib(pid: int, path: Path) -> int:
    """The resident KiB of `path`'s mappings in the process (/proc/<pid>/smaps)."""
    total, ours = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's header line
            ours = line.endswith(" " + str(path))
        elif ours and line.startswith("Rss:"):
            total += int(head[1])
    return total


def _vm_rss_kib(pid: int) -> int:
    return _status_field(pid, "VmRSS")


def _cpu_ns(pid: int) -> int:
    """CPU time of every thread, in ns (schedstat): clock ticks (10 ms) are too coarse for a
    target of 0.05 % (30 ms a minute)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = _meminfo_kib("MemTotal") / MIB
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "loadavg_start": os.getloadavg()}


def _meminfo_kib(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# --- report ------------------------------------------------------------------------------------


def verdict(ok: bool | None, value: float | None = None, target: float | None = None,
            unit: str = "") -> str:
    """met / not met, and by how much when the two numbers are given (lower is better)."""
    if ok is None:
        return "—"
    if value is None or target is None:
        return "met" if ok else "**not met**"
    gap = value - target
    if ok:
        return f"met ({-gap:.3g}{unit} under)"
    return f"**not met** by {gap:.3g}{unit} ({value / target:.1f}× the target)"


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"### ecs-boot performance ({r['date']})",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, Linux "
        f"{m['kernel']}; load average {m['loadavg_start'][0]:.1f} at start, "
        f"{m['loadavg_end'][0]:.1f} at end. ecs-boot {r['version']}. "
        f"Emulators: moto {r['moto']} + harness, fake IMDSv2, fake ECS agent, all on 127.0.0.1. "
        f"Command: `{r['command']}`. Median (min–max) unless stated."
        + (" Fake IMDS with TCP_NODELAY (see bench/results/README.md)." if r.get("imds_nodelay")
           else " Fake IMDS as is (Nagle on: ~40 ms per reused connection).")
        + {"scope": " Docker engine: the host's, with a container scope of the bench's own.",
           "no-engine": " Docker engine: none (this binary has no run --container-scope)."}
        .get(r.get("docker"), ""),
        "",
        "| measure | ecs-boot | peer / detail | target | |",
        "|---|---|---|---|---|",
    ]
    row = lines.append
    for key, title in (("ecs_config", "tags + credentials → ecs.config written"),
                       ("ecs_config_latency", "… with 1 ms IMDS and 20 ms S3 latency"),
                       ("ecs_config_tmpfs", "… with --root on tmpfs (fsync free; diagnostic)")):
        c = r.get(key)
        if not c:
            continue
        if c["classic_s"].get("n"):
            ratio = c["ratio"]
            peer = (f"classic user data (curl IMDSv2 + `aws s3 cp`, awscli {r['awscli']}): "
                    f"{spread(c['classic_s'])}; **{ratio:.0f}×**")
            ok = ratio >= TARGETS["ecs_config_ratio"] if key == "ecs_config" else None
            how = (verdict(ok) + (f" ({ratio:.0f}× vs ≥ {TARGETS['ecs_config_ratio']:.0f}×)"
                                  if ok is not None else "")) if ok is not None else "—"
        else:
            peer, ok = "classic not measured (no aws CLI given)", None
        row(f"| {title} ({c['runs']} runs each) | {spread(c['ecs_boot_s'])} | {peer} | "
            f"{'≥ 50×' if key == 'ecs_config' else 'absolute' if key == 'ecs_config_latency' else ''}"
            f" | {how if c['classic_s'].get('n') else verdict(ok)} |")
        if key == "ecs_config":
            peer_rss = (f"{c['classic_peak_rss_mib']['median']:.1f} MiB (largest process: the "
                        "aws CLI)" if c["classic_peak_rss_mib"].get("n") else "")
            row(f"| peak RSS, spawn → ecs.config | "
                f"{c['ecs_boot_peak_rss_mib']['median']:.1f} MiB | {peer_rss} | | — |")
            row(f"| agent start → `READY=1` (NOTIFY_SOCKET) | {spread(c['ecs_boot_ready_s'])} | "
                "spawn to the datagram | | — |")
            row(f"| `ecs-boot render` (same reads and render, to stdout, no state file) | "
                f"{spread(c['ecs_boot_render_s'])} | process spawn to exit; the gap to `run` is "
                "run's bookkeeping before ecs.config | | — |")
    b = r.get("boots")
    if b:
        ls, ts = b["launch_s"], b["terminate_s"]
        li, ll, tl = b["launch_from_introspection_s"], b["launch_latency_ms"], \
            b["terminate_latency_ms"]
        row(f"| registration → launch hook CONTINUE ({b['runs']} boots, agent registering "
            f"0–3 s after ecs.config) | p50 {secs(ls['median'])}"
            f", p99 {secs(ls['p99'])} (max {secs(ls['max'])}) | from the agent's "
            f"RegisterContainerInstance to the completion, both at moto; from its introspection "
            f"port opening: p50 {secs(li['median'])}, p99 {secs(li['p99'])}; ecs-boot's own "
            f"latency_ms: p50 {ll['median']:.0f}, p99 {ll['p99']:.0f} | p99 ≤ 50 ms | "
            f"{verdict(ls['p99'] <= TARGETS['launch_p99_s'], ls['p99'] * 1000, TARGETS['launch_p99_s'] * 1000, ' ms')} |")
        row(f"| last task gone → terminate hook CONTINUE ({b['runs']} boots) | p50 "
            f"{secs(ts['median'])}, p99 {secs(ts['p99'])} (max {secs(ts['max'])}) | from the "
            f"agent's last StopTask to the completion, both at moto; ecs-boot's own latency_ms "
            f"(drained → completed): p50 {tl['median']:.0f}, p99 {tl['p99']:.0f} | p99 ≤ 100 ms | "
            f"{verdict(ts['p99'] <= TARGETS['terminate_p99_s'], ts['p99'] * 1000, TARGETS['terminate_p99_s'] * 1000, ' ms')} |")
        lc, tc = b["launch_calls"], b["terminate_calls"]

        def actions(d):
            return ", ".join(f"{a} {n}" for a, n in d["first_boot_by_action"].items())

        li_, ti_ = b["launch_imds_median"], b["terminate_imds_median"]
        row(f"| AWS API calls per launch | {lc['median']:g} (min {lc['min']}, max {lc['max']}): "
            f"{actions(lc)} | ECS control-plane calls during registration: "
            f"{b['launch_ecs_calls']}; heartbeats {lc['heartbeats']} (separate); IMDS (not AWS "
            f"API): {li_['requests']:g} requests, {li_['token_puts']:g} token PUTs | ≤ 3, 0 ECS | "
            f"{verdict(lc['max'] <= TARGETS['calls_per_launch'] and b['launch_ecs_calls'] == 0)} |")
        row(f"| AWS API calls per termination | {tc['median']:g} (min {tc['min']}, max "
            f"{tc['max']}): {actions(tc)} | heartbeats {tc['heartbeats']} (separate); IMDS: "
            f"{ti_['requests']:g} requests, {ti_['token_puts']:g} token PUTs | — | — |")
    for i in (r.get("idle"), r.get("idle_spot")):
        if not i:
            continue
        rss_ok = i["rss_mib"]["max"] <= TARGETS["idle_rss_mib"]
        cpu_ok = i["cpu_percent"] <= TARGETS["idle_cpu_percent"]
        how = (f"RSS {verdict(rss_ok, i['rss_mib']['max'], TARGETS['idle_rss_mib'], ' MiB')}; "
               f"CPU {verdict(cpu_ok, i['cpu_percent'], TARGETS['idle_cpu_percent'], ' %')}")
        row(f"| idle RSS / CPU over {i['seconds']:.0f} s in service, "
            f"{i.get('life_cycle', 'on-demand')} instance | RSS "
            f"{i['rss_mib']['median']:.1f} MiB (max {i['rss_mib']['max']:.1f}); CPU "
            f"{i['cpu_percent']:.3f} % ({i['cpu_seconds']:.2f} s) | at the end: anonymous "
            f"{i['rss_anon_mib']:.1f} MiB + file-backed {i['rss_file_mib']:.1f} MiB (the "
            f"binary's own pages {i.get('rss_binary_mib', 0):.1f}, the rest shared libraries), "
            f"{i['threads']} threads; peak RSS since start "
            f"{i['peak_rss_since_start_mib']:.1f} MiB; meanwhile {i['aws_calls']} AWS calls, "
            f"{i['imds_requests']} IMDS requests (drain watch: lifecycle state every 15 s, spot "
            f"notice every 5 s on spot instances; jittered) | ≤ 8 MiB, "
            f"≤ 0.05 % | {how} |")
    s = r.get("binary", {})
    if s:
        rel = s.get("release")
        zig = s.get("zigbuild-glibc-2.26")
        detail = (f"zigbuild glibc 2.26 (the RPM's): {zig['mib']:.1f} MiB "
                  f"({'stripped' if zig['stripped'] else 'NOT stripped'}, built {zig['mtime']}"
                  f"{'; another commit, not counted' if zig.get('stale') else ''})"
                  if zig else "zigbuild binary not present")
        biggest = max(x["mib"] for x in s.values() if not x.get("stale"))
        row(f"| stripped binary size (the agent, `ecs-boot`) | {rel['mib']:.1f} MiB "
            f"(`{rel['path']}`, {rel['bytes']} B, "
            f"{'stripped' if rel['stripped'] else 'NOT stripped'}) | {detail} | ≤ 8 MiB | "
            f"{verdict(biggest <= TARGETS['binary_mib'], biggest, TARGETS['binary_mib'], ' MiB')} |"
            if rel else f"| stripped binary size | not measured | {detail} | ≤ 8 MiB | — |")
    f = r.get("fleet")
    if f:
        if f["measured"]:
            ok = f["wall_s"] <= TARGETS["fleet_s"] and f["instances"] >= TARGETS[
                "fleet_instances"]
            row(f"| fleet status over SSM, {f['instances']} simulated instances, SSM throttled "
                f"({f.get('rates', '')}) | {f['wall_s']:.2f} s, peak RSS "
                f"{f.get('peak_rss_mib') or 0:.1f} MiB | `bench/fleet_status.py` (run inside this "
                f"bench): {'; '.join(f['detail'])} | 5,000 in ≤ 60 s | "
                f"{verdict(ok, f['wall_s'], TARGETS['fleet_s'], ' s')} |")
        else:
            row(f"| fleet status over SSM, 5,000 simulated instances | not measured | "
                f"{f['reason']} | ≤ 60 s | — |")
    st = r.get("storm")
    row("| scale-in storm: 200 terminations at once, account-level throttles | "
        + (st["summary"] if st else "not measured") + " | "
        + (st.get("detail", "") if st else "no storm bench yet (issue 23 item 2; see "
           "bench/results/README.md)") + " | every drain completes, ≤ 3 calls per "
        "termination, no hook timeout; p99 terminate CONTINUE | "
        + (st.get("verdict", "—") if st else "**not measured**") + " |")
    lines += ["", "API calls are counted at moto with source=client from `ecs-boot run`'s start "
              "to the hook's completion (per termination: from the scale-in to it), "
              "heartbeats excluded (listed), IMDS requests counted at the fake IMDS and listed "
              "apart. Times in this table depend on the machine and its load; ratios and "
              "counts do not."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="few iterations (5 of each, 30 s idle): a smoke check, not a claim")
    ap.add_argument("--runs", type=int,
                    help="repetitions of each timed row (default 20 ecs.config pairs and 50 "
                         "boots; --quick 5)")
    ap.add_argument("--binary", default=os.environ.get("ECS_BOOT_BIN")
                    or str(REPO / "target/release/ecs-boot"))
    ap.add_argument("--aws", default=os.environ.get("BENCH_AWS_CLI") or shutil.which("aws"),
                    help="the aws CLI for the classic user-data peer")
    ap.add_argument("--idle", type=int, help="idle sampling seconds (60; --quick 30)")
    ap.add_argument("--skip-fleet", action="store_true")
    ap.add_argument("--fleet-instances", type=int, default=TARGETS["fleet_instances"],
                    help="simulated instances for the fleet-status row (5,000)")
    ap.add_argument("--imds-as-is", action="store_true",
                    help="keep Nagle on in the fake IMDS (adds ~40 ms per reused connection)")
    ap.add_argument("--storm-instances", type=int, default=50,
                    help="instances in the scale-in storm row (issue 23 asks 200; each costs "
                         "~60 MiB with its fake agent)")
    ap.add_argument("--only", default="config,boots,idle,binary,fleet,storm",
                    help="comma-separated rows to run")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--out", default=str(RESULTS), help="where latest.{json,md} go")
    args = ap.parse_args()
    config_runs = args.runs or (5 if args.quick else 20)
    boot_runs = args.runs or (5 if args.quick else 50)
    idle_s = args.idle or (30 if args.quick else 60)
    only = set(args.only.split(","))
    binary = Path(args.binary)
    if not binary.is_file():
        print(f"no ecs-boot binary at {binary}: cargo build --release first", file=sys.stderr)
        return 2

    import moto  # noqa: PLC0415
    awscli = ""
    if args.aws:
        awscli = subprocess.run([args.aws, "--version"], capture_output=True,
                                text=True).stdout.split()[0].split("/")[-1]
    version = subprocess.run([str(binary), "--version"], capture_output=True,
                             text=True).stdout.strip()
    report = {
        "schema": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "bench/run" + (" --quick" if args.quick else "")
                   + (f" --runs {args.runs}" if args.runs else "")
                   + (f" --storm-instances {args.storm_instances}"
                      if args.storm_instances != 50 else "")
                   + (f" --fleet-instances {args.fleet_instances}"
                      if args.fleet_instances != TARGETS["fleet_instances"] else ""),
        "quick": args.quick, "machine": machine(), "version": version,
        "binary": {}, "moto": moto.__version__, "awscli": awscli, "targets": TARGETS,
    }
    if not args.imds_as_is:
        # The fake IMDS speaks HTTP/1.1 keep-alive but writes headers and body in two sends
        # without TCP_NODELAY: on a reused connection the body waits for the client's delayed
        # ACK, ~40 ms per request. A client that pools connections (ecs-boot, like every SDK)
        # pays it on every request after the first; curl, one connection per request, never
        # does. The real IMDS has no such stall, so the bench turns Nagle off on the fake's
        # sockets (in this process only). --imds-as-is measures the harness unchanged.
        harness_imds._Handler.disable_nagle_algorithm = True
    report["imds_nodelay"] = not args.imds_as_is
    started = time.monotonic()
    bench = Bench(args)
    report["docker"] = bench.docker["mode"]
    try:
        if "config" in only:
            report["ecs_config"] = bench.ecs_config(config_runs, latency=False)
            report["ecs_config_latency"] = bench.ecs_config(max(3, config_runs // 2),
                                                            latency=True)
            if Path("/dev/shm").is_dir():
                shm = Path(tempfile.mkdtemp(prefix="ecs-boot-bench-", dir="/dev/shm"))
                try:
                    report["ecs_config_tmpfs"] = bench.ecs_config(max(3, config_runs // 2),
                                                                  latency=False, base=shm)
                finally:
                    shutil.rmtree(shm, ignore_errors=True)
        if "boots" in only:
            report["boots"] = bench.boots(boot_runs)
        if "idle" in only:
            report["idle"] = bench.idle(idle_s)
            report["idle_spot"] = bench.idle(idle_s, life_cycle="spot")
        if "binary" in only:
            report["binary"] = bench.binary_size()
        if "fleet" in only:
            report["fleet"] = bench.fleet()
        if "storm" in only:
            bench.log(f"storm: {args.storm_instances} instances terminating at once")
            report["storm"] = run_storm(bench.binary, args.storm_instances)
    finally:
        bench.close()
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["wall_s"] = round(time.monotonic() - started, 1)
    md = markdown(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "latest.md").write_text(md)
    print(md)
    print(f"(bench took {report['wall_s']:.0f} s; JSON: {out / 'latest.json'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
