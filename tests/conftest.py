"""pytest fixtures shared by every ecs-boot integration test (see harness/README.md).

    moto        the in-process moto server (session), reset before each test
    imds        a fresh fake IMDSv2 per test
    world       a simulated launch (cluster, creds, ASG with hooks, instance in Pending:Wait)
    make_world  factory for worlds with other parameters
    fake_agent  factory: starts fake_ecs_agent.py subprocesses
    ecs_boot    runs the real binary against all of the above
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.imds import FakeImds  # noqa: E402
from harness.moto_ext import MotoServer  # noqa: E402
from harness.procs import EcsBoot, FakeAgent, base_env  # noqa: E402
from harness.world import build_world, follow_lifecycle  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "world(**kwargs): parameters for the `world` fixture (see build_world)")
    config.addinivalue_line(
        "markers", "e2e: slow end-to-end test (real terraform apply/destroy against moto, ...); "
        "deselect with -m 'not e2e'")
    config.addinivalue_line(
        "markers", "serial: needs the machine to itself (see SERIAL_FILES); tests/run runs these "
        "after the parallel phase, one at a time")


# tests/run runs the suite in two phases: `--phase parallel` under pytest-xdist with
# `--dist loadfile` (a file never splits across workers; SHARED_GROUPS keeps some files together),
# then `--phase serial` alone. Plain pytest runs everything in one process, as before.
#
# Serial: files that need the Docker engine's default label scope (io.ecs-boot.managed=true) or
# fixed ports to themselves. Any `ecs-boot run` without --container-scope reconciles that scope,
# so it would remove the simulated instance's system container or a fault row's containers; the
# fault matrix refuses to run its Docker rows while another ecs-boot container exists, and its
# table is printed by a plugin that must see every row in one process; the simulated instance's
# stand-in ECS agent listens on 127.0.0.1:51678 and :51680 (test_sim_evidence.py boots the same
# instance).
SERIAL_FILES = {"test_sim_instance.py", "test_sim_evidence.py", "test_faults.py"}
# Files sharing a session fixture whose teardown removes what the other file still uses (the
# busybox image test_drain.py, test_extensions.py and test_health.py import from
# test_containers.py, which also removes it in one test): one worker runs them all.
SHARED_GROUPS = {"test_containers.py": "busybox-image", "test_drain.py": "busybox-image",
                 "test_extensions.py": "busybox-image", "test_health.py": "busybox-image"}


def pytest_addoption(parser):
    parser.addoption("--phase", choices=("all", "parallel", "serial"), default="all",
                     help="tests/run's phases: only the tests that may run in parallel with "
                     "others, or only the serial ones (default: all)")


def pytest_collection_modifyitems(config, items):
    phase = config.getoption("phase")
    keep, drop = [], []
    for item in items:
        if item.path.name in SERIAL_FILES:
            item.add_marker(pytest.mark.serial)
        serial = item.get_closest_marker("serial") is not None
        wanted = phase == "all" or (phase == "serial") == serial
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent under -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, with the files of one SHARED_GROUPS group as one unit. (xdist_group marks
    and --dist loadgroup do not work with pytest 9: xdist 3.8 renames items through a field
    pytest 9 no longer reads.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFileScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return SHARED_GROUPS.get(Path(path).name, path)

    return SharedFileScheduling(config, log)


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def moto(moto_server):
    """The shared moto server, emptied first: moto state, lifecycle timers, call log."""
    moto_server.reset()
    yield moto_server
    moto_server.reset()  # no heartbeat timer of this test may fire into the next one


@pytest.fixture
def imds(moto_server):
    fake = FakeImds(moto_url=moto_server.url).start()
    yield fake
    fake.stop()


@pytest.fixture
def worlds():
    """Every world a test built: the harness's trusted config.d drop-in opens their locations."""
    return []


@pytest.fixture
def make_world(moto, imds, worlds):
    """make_world(**kwargs) -> World; kwargs as harness.world.build_world. The first world
    built is mirrored into `imds` (pass mirror=False to skip) and its target-lifecycle-state
    follows the harness lifecycle changes."""
    mirrored = []

    def make(mirror: bool | None = None, **kwargs):
        mirror = not mirrored if mirror is None else mirror
        world = build_world(moto.url, imds if mirror else None, **kwargs)
        worlds.append(world)
        if mirror:
            follow_lifecycle(imds, world.instance_id)
            mirrored.append(world)
        return world

    return make


@pytest.fixture
def world(request, make_world):
    """The default world, or one configured by indirect parametrisation or @pytest.mark.world."""
    marker = request.node.get_closest_marker("world")
    kwargs = dict(marker.kwargs) if marker else {}
    kwargs.update(getattr(request, "param", None) or {})
    return make_world(**kwargs)


@pytest.fixture
def fake_agent(moto, imds, tmp_path):
    """fake_agent(config_path=None, *, env=None, wait_registered=False, **options) -> FakeAgent.

    options: register_delay, never_register, cluster_override, stop_delay (None = never),
    instance_id (else IMDS), port (introspection; else a free one, see harness.procs.free_port).
    env adds variables (e.g. ECS_CLUSTER) to the agent's environment.
    """
    agents: list[FakeAgent] = []

    def start(config_path=None, *, env=None, wait_registered=False, register_delay=0.0,
              never_register=False, cluster_override=None, stop_delay=0.5, instance_id=None,
              port=None):
        args = ["--register-delay", str(register_delay),
                "--stop-delay", "never" if stop_delay is None else str(stop_delay)]
        if config_path:
            args += ["--config", str(config_path)]
        if never_register:
            args.append("--never-register")
        if cluster_override:
            args += ["--cluster-override", cluster_override]
        if instance_id:
            args += ["--instance-id", instance_id]
        agent_env = {**base_env(moto.url, imds.url, tmp_path), **(env or {})}
        agent = FakeAgent(agent_env, args, tmp_path / f"fake-agent-{len(agents)}.log", port)
        agents.append(agent)
        if wait_registered:
            agent.wait_registered()
        return agent

    yield start
    for agent in agents:
        agent.kill()


@pytest.fixture
def ecs_boot(moto, imds, tmp_path, worlds):
    """EcsBoot: .run(*args, timeout=, env=), .spawn(*args), .write_config(text), .root."""
    binary = Path(os.environ.get("ECS_BOOT_BIN") or REPO_ROOT / "target/debug/ecs-boot")
    if not binary.is_file():
        pytest.skip(f"ecs-boot binary not found at {binary}: run `cargo build` or set "
                    "ECS_BOOT_BIN")
    home = tmp_path / "home"
    home.mkdir()
    runner = EcsBoot(binary.resolve(), tmp_path, base_env(moto.url, imds.url, home))
    runner.trusted_worlds = worlds
    yield runner
    runner.close()
