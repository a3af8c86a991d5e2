"""`ecs-boot status` for operators (issue 6): table and JSON, exit codes, drift, --watch, and a
daemon that is down."""
import json
import signal

from harness.procs import wait_for
from lifecycle_helpers import start_instance, status, stop, wait_state


def test_never_ran(ecs_boot):
    out = ecs_boot.run("status")
    assert out.returncode == 4
    assert "has not run" in out.stdout
    assert json.loads(ecs_boot.run("status", "--json").stdout)["health"] == "no_state"


def test_watch_follows_the_boot_to_the_end(moto, world, ecs_boot, fake_agent):
    proc, _ = start_instance(ecs_boot, fake_agent, register_delay=2.5)
    out = ecs_boot.run("status", "--watch", "--json", timeout=40)
    lines = [json.loads(l) for l in out.stdout.splitlines()]
    assert out.returncode == 0
    assert lines[0]["health"] == "in_progress" and lines[-1]["health"] == "healthy"
    assert len(lines) >= 2
    final = lines[-1]
    assert final["ecs_agent"]["container_instance_arn"] == final["state"]["registration"]["container_instance_arn"]
    assert final["ecs_agent"]["cluster"] == world.cluster
    assert len(out.stdout.splitlines()[-1]) < 24_000, "fits SSM's inline output"
    assert stop(proc) == 0


def test_table_shows_phases_registration_and_hooks(moto, world, ecs_boot, fake_agent):
    proc, _ = start_instance(ecs_boot, fake_agent)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    table = ecs_boot.run("status").stdout
    for phase in ("identity", "tags", "credentials", "ecs-config-write", "registration",
                  "launch-hook"):
        assert phase in table, phase
    assert "health: healthy" in table and "registered" in table
    assert f"hook launch    CONTINUE  {world.launch_hook}" in table
    assert "no drift" in table
    assert stop(proc) == 0


def test_drift_on_disk_and_from_the_live_sources(moto, world, imds, ecs_boot, fake_agent):
    proc, _ = start_instance(ecs_boot, fake_agent)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    with open(ecs_boot.ecs_config, "a") as f:
        f.write("ECS_LOGLEVEL=debug\n")
    report = status(ecs_boot)
    assert "differs from what ecs-boot wrote" in report["ecs_config_drift"]
    tags = dict(world.tags, **{"ecs-boot:attribute:stack": "green"})
    imds.set_tags(tags)
    out = ecs_boot.run("status", "--json", "--check-render")
    assert "fresh render" in json.loads(out.stdout)["render_drift"]
    assert stop(proc) == 0


def test_daemon_killed_mid_boot_reads_as_failed(moto, world, ecs_boot, fake_agent):
    proc, _ = start_instance(ecs_boot, fake_agent, never_register=True)
    wait_state(ecs_boot, lambda s: any(p["name"] == "registration" for p in s["phases"]))
    assert ecs_boot.run("status").returncode == 3
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    out = ecs_boot.run("status")
    assert out.returncode == 1
    assert "daemon: not running" in out.stdout
