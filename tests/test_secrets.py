"""Issue 10, secrets: a whole boot with a known registry password (launch to CONTINUE, in service,
then a drain to the terminate hook), and the boots that fail on credentials which contain it,
leave it nowhere but in ecs.config (base64, where the agent reads it).

Grepped: every line ecs-boot logged (stderr, at ECS_BOOT_LOG=trace, where the SDKs log requests
and responses), `status` (table and --json) at every stage, `render`, `gate`, state.json, every
error message and ABANDON cause. Journald: outside systemd ecs-boot logs to stderr, which is
grepped here; the same events go to the journal on an instance (tests/test_sim_instance.py runs
the real unit under systemd).
"""

from __future__ import annotations

import base64
import json

import pytest

from harness.procs import free_port, wait_for
from lifecycle_helpers import boot_config, stop, wait_state

USER = "ci-robot"
SECRET = "Vv9-corr3ct-h0rse-SECRET-77qZ"
TRACE = {"ECS_BOOT_LOG": "trace"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Every spelling of the secret that would be a leak.
NEEDLES = {
    "password": SECRET,
    "base64(user:password)": b64(f"{USER}:{SECRET}"),
    "base64(password)": b64(SECRET),
    "password, JSON-escaped": json.dumps(SECRET)[1:-1],
}


def assert_no_leak(texts: dict[str, str]) -> None:
    leaks = [(where, what) for where, text in texts.items()
             for what, needle in NEEDLES.items() if needle in text]
    assert not leaks, f"secret leaked: {leaks}"


def observe(ecs_boot, stage: str) -> dict[str, str]:
    """Every operator-facing output at this moment."""
    out = {}
    for args in (("status",), ("status", "--json"), ("gate",)):
        r = ecs_boot.run(*args, timeout=30, env=TRACE)
        out[f"{stage}: {' '.join(args)}"] = r.stdout + r.stderr
    if ecs_boot.state_file.exists():
        out[f"{stage}: state.json"] = ecs_boot.state_file.read_text()
    return out


def logs(ecs_boot) -> dict[str, str]:
    return {f"ecs-boot log {i}": p.log_path.read_text(errors="replace")
            for i, p in enumerate(ecs_boot._spawned)}


@pytest.mark.world(registry_user=USER, registry_password=SECRET)
def test_whole_boot_and_drain_never_show_the_secret(moto, world, ecs_boot, fake_agent):
    texts = {}
    # As lifecycle_helpers.start_instance, at the trace log level.
    port = free_port()
    ecs_boot.write_config(boot_config(port))
    proc = ecs_boot.spawn("run", env=TRACE)
    wait_for(lambda: ecs_boot.ecs_config.exists(), timeout=20, what="ecs.config")
    agent = fake_agent(ecs_boot.ecs_config, port=port, stop_delay=0.3)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    texts.update(observe(ecs_boot, "in service"))
    r = ecs_boot.run("render", timeout=60, env=TRACE)
    assert r.returncode == 0, r.stderr
    texts["render"] = r.stdout + r.stderr

    agent.add_tasks("web", kind="service", count=2)
    moto.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=world.instance_id, ShouldDecrementDesiredCapacity=True)
    wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated", timeout=40)
    texts.update(observe(ecs_boot, "terminated"))
    assert stop(proc) == 0
    texts.update(logs(ecs_boot))
    assert_no_leak(texts)

    # The boot really carried the secret: it is in ecs.config, where the agent reads it.
    assert b64(f"{USER}:{SECRET}") in ecs_boot.ecs_config.read_text()
    # ... and the trace log is the verbose one (the SDK's requests are in it).
    assert "GetObject" in texts["ecs-boot log 0"] or "get_object" in texts["ecs-boot log 0"]


BAD_CREDENTIALS = {
    # Truncated JSON, the secret in the part that was read.
    "truncated JSON": '{"username": "%s", "password": "%s"' % (USER, SECRET),
    # "auth" that is not base64: the raw value must not be echoed.
    "auth not base64": json.dumps({"auths": {"docker.io": {"auth": f"!{SECRET}!"}}}),
    # base64 of the password alone: no user:password split.
    "auth without colon": json.dumps({"auths": {"docker.io": {"auth": b64(SECRET)}}}),
    # The secret where an object was expected.
    "wrong shape": json.dumps({"auths": SECRET}),
    # A control character inside the password.
    "control character": json.dumps({"username": USER, "password": SECRET + "\u0007"}),
    # A value of the wrong type holding the secret.
    "password not a string": '{"username": "%s", "password": ["%s"]}' % (USER, SECRET),
}


@pytest.mark.parametrize("case", list(BAD_CREDENTIALS))
def test_failing_credentials_never_show_the_secret(case, moto, world, ecs_boot, fake_agent):
    bucket, key = world.registry_auth[len("s3://"):].split("/", 1)
    moto.client("s3").put_object(Bucket=bucket, Key=key, Body=BAD_CREDENTIALS[case].encode())
    ecs_boot.write_config(boot_config(free_port()))
    r = ecs_boot.run("render", timeout=60, env=TRACE)
    assert r.returncode != 0
    texts = {"render": r.stdout + r.stderr}
    proc = ecs_boot.spawn("run", env=TRACE)
    assert proc.wait(40) == 1
    s = json.loads(ecs_boot.state_file.read_text())
    launch = next(h for h in s["hooks"] if h["transition"] == "launch")
    assert launch["result"] == "ABANDON" and world.registry_auth in launch["cause"], launch
    texts["ABANDON cause"] = launch["cause"]
    texts.update(observe(ecs_boot, "failed"))
    texts.update(logs(ecs_boot))
    assert_no_leak(texts)
    assert not ecs_boot.ecs_config.exists()
