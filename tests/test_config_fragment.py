"""Configuration without a new AMI (issue 12): a tag-named fragment merged over the baked config
under the tag rules, and `systemctl reload ecs-boot` (SIGHUP) picking up changes and rotated
credentials."""
import json
import signal

import pytest

from harness.procs import wait_for
from harness.world import docker_config
from lifecycle_helpers import start_instance, stop, wait_state

FRAGMENT_KEY = "fragments/web.toml"


def put(moto, world, key, body):
    bucket = world.registry_auth[len("s3://"):].split("/", 1)[0]
    moto.client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())
    return f"s3://{bucket}/{key}"


# build_world keeps its credentials in s3://<name>-boot-config/; the fragment sits beside them.
LOCATION = f"s3://demo-boot-config/{FRAGMENT_KEY}"


@pytest.fixture
def fragment_world(moto, make_world):
    w = make_world(tags={"ecs-boot:config": LOCATION})
    put(moto, w, FRAGMENT_KEY, "")
    return w


def test_fragment_settings_and_attributes_reach_ecs_config(moto, fragment_world, ecs_boot):
    put(moto, fragment_world, FRAGMENT_KEY,
        '[ecs.attributes]\nteam = "payments"\n[ecs.settings]\nECS_CONTAINER_STOP_TIMEOUT = "2m"\n')
    out = ecs_boot.run("render")
    assert out.returncode == 0, out.stderr
    assert 'ECS_INSTANCE_ATTRIBUTES={"ecs-boot.ready":"false","team":"payments"}' in out.stdout
    assert "ECS_CONTAINER_STOP_TIMEOUT=2m" in out.stdout


def test_fragment_cannot_grant_what_tags_cannot(moto, fragment_world, ecs_boot):
    location = put(moto, fragment_world, FRAGMENT_KEY,
                   '[ecs.settings]\nECS_ENABLE_TASK_IAM_ROLE = "true"\n')
    out = ecs_boot.run("render")
    assert out.returncode == 1
    assert "ECS_ENABLE_TASK_IAM_ROLE" in out.stderr and location in out.stderr
    put(moto, fragment_world, FRAGMENT_KEY, '[ecs]\nlocked = []\n')
    assert "ecs.locked: not open to fragments" in ecs_boot.run("render").stderr


def test_locked_config_tag_is_ignored(moto, fragment_world, ecs_boot):
    put(moto, fragment_world, FRAGMENT_KEY, '[ecs.settings]\nECS_CONTAINER_STOP_TIMEOUT = "2m"\n')
    ecs_boot.write_config('[ecs]\nlocked = ["config"]\n')
    out = ecs_boot.run("render")
    assert out.returncode == 0 and "ECS_CONTAINER_STOP_TIMEOUT" not in out.stdout


def test_reload_picks_up_fragment_changes_and_rotated_credentials(moto, fragment_world, ecs_boot,
                                                                  fake_agent):
    proc, _ = start_instance(ecs_boot, fake_agent)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    before = ecs_boot.ecs_config.read_text()
    put(moto, fragment_world, FRAGMENT_KEY, '[ecs.settings]\nECS_CONTAINER_STOP_TIMEOUT = "5m"\n')
    key = fragment_world.registry_auth[len("s3://"):].split("/", 1)[1]
    put(moto, fragment_world, key,
        json.dumps(docker_config(fragment_world.registry, "demo", "rotated-pass-2")))
    proc.send_signal(signal.SIGHUP)
    after = wait_for(lambda: (t := ecs_boot.ecs_config.read_text()) != before and t,
                     timeout=20, what="ecs.config re-rendered")
    assert "ECS_CONTAINER_STOP_TIMEOUT=5m" in after
    auth = lambda text: next(l for l in text.splitlines() if l.startswith("ECS_ENGINE_AUTH_DATA="))
    assert auth(after) != auth(before)
    assert ecs_boot.run("gate").returncode == 0, "the gate accepts the re-rendered file"
    assert proc.poll() is None, "reload keeps the agent running"
    assert stop(proc) == 0
