"""Issue 22, the flight recorder: a failed boot leaves its evidence in S3 before the ABANDON
(state, journal, ECS agent log tail, masked ecs.config, system containers' logs), under
`<[recorder] location><instance-id>/<timestamp>/` and nowhere else, without a secret in it, and a
stuck upload never holds the ABANDON up for longer than `[recorder] timeout`."""

from __future__ import annotations

import base64
import json

import pytest

from lifecycle_helpers import never_registering_boot, status

USER = "ci-robot"
SECRET = "Vv9-corr3ct-h0rse-SECRET-77qZ"
PROXY_SECRET = "pr0xy-Pa55w0rd-MARKER"
BUCKET = "demo-evidence"
PREFIX = "boots/"
FILES = {"state.json", "ecs-boot.journal.txt", "ecs-agent.log", "ecs.config.masked",
         "containers.log"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


NEEDLES = {
    "password": SECRET,
    "base64(user:password)": b64(f"{USER}:{SECRET}"),
    "base64(password)": b64(SECRET),
    "proxy password": PROXY_SECRET,
    "base64(proxy user:password)": b64(f"squid:{PROXY_SECRET}"),
}

RECORDER = (f'[recorder]\nlocation = "s3://{BUCKET}/{PREFIX}"\ntimeout = "{{timeout}}"\n'
            f'[proxy]\nhttps_proxy = "http://squid:{PROXY_SECRET}@127.0.0.1:9"\n')


def failing_boot(moto, ecs_boot, fake_agent, timeout="5s"):
    """A boot whose ECS agent never registers: ecs.config (with both secrets) is written, the
    launch fails, ecs-boot records and ABANDONs. The agent's log holds the secrets too, as a
    careless log line would."""
    moto.client("s3").create_bucket(Bucket=BUCKET)
    agent_log = ecs_boot.root / "var/log/ecs/ecs-agent.log"
    agent_log.parent.mkdir(parents=True, exist_ok=True)
    agent_log.write_text("".join(f"level=info msg=\"line {i}\"\n" for i in range(50))
                         + f"level=debug msg=\"auth {USER}:{SECRET} {b64(f'{USER}:{SECRET}')}\"\n"
                         + f"level=debug msg=\"proxy http://squid:{PROXY_SECRET}@proxy\"\n"
                         + "level=error msg=\"AGENT-LOG-LAST-LINE\"\n")
    return never_registering_boot(ecs_boot, fake_agent, RECORDER.format(timeout=timeout))


def uploaded(moto, instance_id) -> dict[str, str]:
    s3 = moto.client("s3")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().decode()
            for o in listed}


@pytest.mark.world(registry_user=USER, registry_password=SECRET)
def test_a_failed_boot_leaves_its_evidence_before_the_abandon(moto, world, ecs_boot, fake_agent):
    proc = failing_boot(moto, ecs_boot, fake_agent)
    assert proc.wait(40) == 1
    assert [c["result"] for c in moto.completions()] == ["ABANDON"]
    # The boot really carried both secrets.
    written = ecs_boot.ecs_config.read_text()
    assert b64(f"{USER}:{SECRET}") in written and PROXY_SECRET in written

    objects = uploaded(moto, world.instance_id)
    folders = {k.rsplit("/", 1)[0] + "/" for k in objects}
    assert len(folders) == 1, objects.keys()
    folder = folders.pop()
    assert folder.startswith(f"{PREFIX}{world.instance_id}/"), folder
    files = {k[len(folder):]: v for k, v in objects.items()}
    assert set(files) == FILES

    leaks = [(name, what) for name, body in files.items()
             for what, needle in NEEDLES.items() if needle in body]
    assert not leaks, f"secret uploaded: {leaks}"
    masked = files["ecs.config.masked"]
    assert f"ECS_CLUSTER={world.cluster}" in masked
    assert "ECS_ENGINE_AUTH_DATA=<secret sha256:" in masked
    assert "HTTPS_PROXY=<secret sha256:" in masked
    assert "AGENT-LOG-LAST-LINE" in files["ecs-agent.log"]
    assert "<redacted>" in files["ecs-agent.log"]
    state = json.loads(files["state.json"])
    assert "did not register" in state["error"]["message"]
    # Outside systemd there is no journal: said so, not an error.
    assert files["ecs-boot.journal.txt"].startswith("(")

    # Every S3 write ecs-boot made went under the recorder's prefix, and before the ABANDON.
    writes = [c for c in moto.calls(source="client", service="s3")
              if c["action"] not in ("GetObject", "HeadObject", "ListObjectsV2", "ListObjects")]
    assert writes and all(c["action"] == "PutObject" for c in writes), writes
    assert all(c["params"]["Bucket"] == BUCKET and c["params"]["Key"].startswith(folder)
               for c in writes), writes
    assert len(writes) == len(FILES) and all(c["accepted"] for c in writes)
    complete = [c for c in moto.calls(source="client")
                if c["action"] == "CompleteLifecycleAction"]
    assert len(complete) == 1 and max(c["time"] for c in writes) < complete[0]["time"]

    # status shows where the evidence went.
    s = status(ecs_boot)
    ev = s["state"]["evidence"]
    assert ev["location"] == f"s3://{BUCKET}/{folder}" and ev["trigger"] == "abandon", ev
    assert ev["files"] == len(FILES) and "error" not in ev, ev
    table = ecs_boot.run("status").stdout
    assert f"evidence  s3://{BUCKET}/{folder}" in table, table


@pytest.mark.world(registry_user=USER, registry_password=SECRET)
def test_a_stuck_upload_does_not_hold_up_the_abandon(moto, world, ecs_boot, fake_agent):
    moto.client("s3").create_bucket(Bucket=BUCKET)
    held = moto.hold("s3", "PutObject", when="before")
    try:
        # 4 s, not 1: the budget also covers collecting the evidence, and on a loaded CI machine
        # collection alone once took over a second, so no upload was ever attempted.
        proc = failing_boot(moto, ecs_boot, fake_agent, timeout="4s")
        held.wait_arrived(40)
        # The upload is still held, yet the ABANDON goes out and ecs-boot exits.
        assert proc.wait(40) == 1
        assert [c["result"] for c in moto.completions()] == ["ABANDON"]
        ev = status(ecs_boot)["state"]["evidence"]
        assert "gave up after [recorder] timeout = 4s" in ev["error"], ev
        assert ev["files"] < len(FILES), ev
    finally:
        held.release()


def test_status_upload_records_on_demand(moto, world, ecs_boot):
    moto.client("s3").create_bucket(Bucket=BUCKET)
    ecs_boot.write_config(RECORDER.format(timeout="5s"))
    r = ecs_boot.run("status", "--upload", "--json")
    assert f"evidence uploaded to s3://{BUCKET}/{PREFIX}{world.instance_id}/" in r.stderr, r.stderr
    json.loads(r.stdout)  # stdout stays the status document
    keys = uploaded(moto, world.instance_id).keys()
    assert {k.rsplit("/", 1)[1] for k in keys} == FILES


def test_status_upload_without_a_recorder_fails_and_writes_nothing(moto, world, ecs_boot):
    ecs_boot.write_config("")
    r = ecs_boot.run("status", "--upload")
    assert r.returncode == 1 and "no [recorder] location" in r.stderr, r.stderr
    assert not [c for c in moto.calls(source="client") if c["action"] == "PutObject"]


def test_a_drain_that_hits_its_deadline_leaves_its_evidence(moto, world, ecs_boot, fake_agent):
    from lifecycle_helpers import start_instance, stop, wait_state
    moto.client("s3").create_bucket(Bucket=BUCKET)
    proc, agent = start_instance(
        ecs_boot, fake_agent, stop_delay=None,
        extra_config='deadline = "3s"\nstandalone_grace = "1h"\n'
                     f'[recorder]\nlocation = "s3://{BUCKET}/{PREFIX}"\n')
    wait_state(ecs_boot, lambda s: s.get("outcome") == "in_service")
    assert not uploaded(moto, world.instance_id), "a boot that went well records nothing"
    agent.add_tasks("stuck", kind="service", count=1)
    moto.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=world.instance_id, ShouldDecrementDesiredCapacity=True)
    s = wait_state(ecs_boot, lambda s: s.get("outcome") == "terminated", timeout=40)
    assert s["drain"]["state"] == "deadline"
    ev = s["evidence"]
    assert ev["trigger"] == "drain-deadline" and "error" not in ev, ev
    files = {k.rsplit("/", 1)[1]: v for k, v in uploaded(moto, world.instance_id).items()}
    assert set(files) == FILES
    assert json.loads(files["state.json"])["drain"]["state"] == "deadline"
    # Recorded before the terminate hook was completed.
    puts = [c for c in moto.calls(source="client") if c["action"] == "PutObject"]
    complete = [c for c in moto.calls(source="client") if c["action"] == "CompleteLifecycleAction"
                and c["params"].get("LifecycleHookName") == world.terminate_hook]
    assert puts and complete and max(c["time"] for c in puts) < complete[-1]["time"]
    assert stop(proc) == 0
