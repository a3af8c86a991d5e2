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


def test_status_reads_state_from_other_versions(ecs_boot):
    """An RPM upgrade must never break `status`: it reads a state file written by an older
    version (fields missing) and by a newer one (fields it does not know)."""
    ecs_boot.state_file.parent.mkdir(parents=True, exist_ok=True)
    older = {"schema": 1, "version": "0.0.9", "commit": "old", "pid": 1,
             "started_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:01Z",
             "outcome": "in_service"}
    ecs_boot.state_file.write_text(json.dumps(older))
    out = ecs_boot.run("status", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["state"]["version"] == "0.0.9"
    newer = dict(older, schema=2, version="9.9.9", future_field={"x": 1},
                 phases=[{"name": "identity", "status": "ok", "started_at": older["started_at"],
                          "something_new": True}])
    ecs_boot.state_file.write_text(json.dumps(newer))
    out = ecs_boot.run("status")
    assert out.returncode == 0 and "identity" in out.stdout and "9.9.9" in out.stdout


def test_version_names_the_commit_and_completions_are_generated(ecs_boot):
    import subprocess
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    version = ecs_boot.run("--version").stdout
    assert version.startswith("ecs-boot 0.") and "(" in version
    if commit:
        # the binary was built from this checkout or an earlier commit of it
        assert len(version.split("(")[1].rstrip(")\n")) == 12
    for shell in ("bash", "zsh", "fish"):
        out = ecs_boot.run("completions", shell)
        assert out.returncode == 0 and "drain" in out.stdout and "status" in out.stdout


def test_status_names_where_each_ecs_config_value_came_from(moto, make_world, ecs_boot):
    """Issue 19 item 4: every variable of ecs.config keeps its source — the baked file, a
    config.d drop-in, the fragment, a tag, ecs-boot itself, or user data's own line — and status
    shows it (names and sources, never a value)."""
    fragment = "s3://demo-boot-config/fragments/sources.toml"
    world = make_world(tags={"ecs-boot:config": fragment,
                             "ecs-boot:setting:ECS_LOGLEVEL": "debug"})
    bucket, key = fragment[len("s3://"):].split("/", 1)
    moto.client("s3").put_object(Bucket=bucket, Key=key,
                                 Body=b'[ecs.settings]\nECS_CONTAINER_STOP_TIMEOUT = "2m"\n')
    ecs_boot.write_config("")  # fixes config.d beside --config before the drop-in is written
    drop_in = ecs_boot.config_d / "20-group.toml"
    drop_in.parent.mkdir(parents=True, exist_ok=True)
    drop_in.write_text('[ecs.settings]\nECS_IMAGE_CLEANUP_INTERVAL = "2h"\n')
    # User data's own lines: one ecs-boot keeps, one a tag overrides.
    ecs_boot.ecs_config.parent.mkdir(parents=True, exist_ok=True)
    ecs_boot.ecs_config.write_text("ECS_DISABLE_PRIVILEGED=true\nECS_LOGLEVEL=info\n")

    proc, _ = start_instance(ecs_boot, None, agent=False,
                             extra_config='[ecs.settings]\nECS_ENABLE_TASK_IAM_ROLE = "true"\n')
    state = wait_state(ecs_boot, lambda s: s.get("ecs_config"))
    stop(proc)

    sources = status(ecs_boot)["state"]["ecs_config"]["sources"]
    expected = {
        "ECS_CLUSTER": "tag ecs-boot:cluster",
        "ECS_LOGLEVEL": "tag ecs-boot:setting:ECS_LOGLEVEL, over user data's own line",
        "ECS_CONTAINER_STOP_TIMEOUT": f"fragment {fragment}",
        "ECS_IMAGE_CLEANUP_INTERVAL": f"config.d {drop_in}",
        "ECS_ENABLE_TASK_IAM_ROLE": f"baked config {ecs_boot.config_path}",
        "ECS_DISABLE_PRIVILEGED": "user data (a line outside ecs-boot's block)",
    }
    for name, source in expected.items():
        assert sources.get(name) == source, (name, sources)
    assert sources["ECS_ENGINE_AUTH_DATA"] == (
        f"ecs-boot (registry credentials {world.registry_auth}, named by tag "
        "ecs-boot:registry-auth)"), sources
    assert set(state["ecs_config"]["keys"]) <= set(sources), "every variable ecs-boot wrote"

    table = ecs_boot.run("status").stdout
    for name, source in expected.items():
        assert any(l.split() == f"{name} from {source}".split() for l in table.splitlines()), \
            (name, table)
    # Names and sources only: the credentials in ecs.config never reach status.
    secret = next(l for l in ecs_boot.ecs_config.read_text().splitlines()
                  if l.startswith("ECS_ENGINE_AUTH_DATA="))[len("ECS_ENGINE_AUTH_DATA="):]
    assert secret and secret not in table and secret not in json.dumps(sources)
