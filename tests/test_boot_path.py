"""Issue 2, the boot path: instance tags and registry credentials become an atomic ecs.config.

Every test drives the real binary (`target/debug/ecs-boot`) against moto and the fake IMDS. Only
the config phase is exercised: `render` for what would be written, and `run` stopped with SIGTERM
as soon as the state file records `ecs-config-write` as ok (later phases, ECS agent registration
and the launch hook, are not part of this suite).
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import stat
import threading
import time

import pytest

from harness.fake_ecs_agent import parse_ecs_config
from harness.procs import wait_for

HUB = "https://index.docker.io/v1/"
USER = "ci-robot"
# Distinctive enough that any occurrence anywhere is a leak, never a coincidence.
SECRET = "Xq7-h0rse-B4ttery-st4ple-91zK"
SECRET_B64 = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()

# Short waits keep the suite fast: a missing tag fails after 4 s instead of 2 minutes. Not 1 s:
# on a loaded 2-core CI box the fake IMDS's first answer alone once took longer than that.
FAST = '[tags]\nwait = "4s"\n[imds]\ntimeout = "5s"\n'


# --- helpers ---------------------------------------------------------------------------------

def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(autouse=True)
def trusted_locations(ecs_boot):
    """The trusted config.d opens the locations these tests store credentials in to tags."""
    ecs_boot.extra_trust = {"registry_auth_prefixes": ["s3://creds-bucket/", "ssm:/prod/"]}



def put_s3(moto, bucket: str, key: str, body: str | bytes) -> str:
    s3 = moto.client("s3")
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)
    return f"s3://{bucket}/{key}"


def put_ssm(moto, name: str, value: str, kind: str = "SecureString") -> str:
    moto.client("ssm").put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)
    return f"ssm:{name}"


def tags_for(cluster: str = "prod-web", **extra) -> dict:
    tags = {"ecs-boot:cluster": cluster, "Name": "ecs-node",
            "aws:autoscaling:groupName": "prod-web-asg"}
    tags.update(extra)
    return tags


def boot_env(imds, tags: dict | None = None) -> None:
    """Just the IMDS: identity defaults plus these tags (no moto world needed for tag tests)."""
    imds.set_tags(tags_for() if tags is None else tags)


def render(ecs_boot, *args, env=None):
    return ecs_boot.run("render", *args, timeout=60, env=env)


def read_state(ecs_boot) -> dict | None:
    try:
        return json.loads(ecs_boot.state_file.read_text())
    except (OSError, ValueError):
        return None


def phase(state: dict | None, name: str) -> dict | None:
    for p in reversed((state or {}).get("phases", [])):
        if p["name"] == name:
            return p
    return None


class Run:
    """Outcome of one `ecs-boot run` limited to the config phase."""

    def __init__(self, code: int | None, log: str, state: dict | None):
        self.code, self.log, self.state = code, log, state

    @property
    def ok(self) -> bool:
        p = phase(self.state, "ecs-config-write")
        return bool(p and p["status"] == "ok")


def run_config_phase(ecs_boot, timeout: float = 40, env=None) -> Run:
    """Spawns `run`; once ecs-config-write is ok, SIGTERMs it. If it exits first (a config-phase
    failure), returns its exit code. `code` is None when we stopped it."""
    proc = ecs_boot.spawn("run", env=env)

    def progressed():
        if proc.poll() is not None:
            return "exited"
        state = read_state(ecs_boot)
        if not state or state.get("pid") != proc.pid:
            return None  # the previous run's state file
        p = phase(state, "ecs-config-write")
        if p and p["status"] == "failed":
            return "written"
        # Written, and the gate opened (the loop left the config stage: Release done).
        left_config = state.get("stage") not in (None, "config")
        return "written" if p and p["status"] == "ok" and left_config else None

    how = wait_for(progressed, timeout, interval=0.05, what="config phase of `ecs-boot run`")
    code = None
    if how == "exited":
        code = proc.returncode
    else:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except Exception:
            proc.kill()
            proc.wait(5)
    return Run(code, proc.log_path.read_text(errors="replace"), read_state(ecs_boot))


def assert_failed_run(run: Run, ecs_boot, *needles: str) -> None:
    """A config-phase failure: exit 1, error on stderr and in state.json, no ecs.config."""
    assert run.code == 1, f"expected exit 1, got {run.code}\n{run.log}"
    assert run.state and run.state["outcome"] == "failed", run.state
    message = run.state["error"]["message"]
    assert run.state["error"]["hint"], run.state["error"]
    for needle in needles:
        assert needle in run.log, f"{needle!r} not on stderr:\n{run.log}"
        assert needle in message, f"{needle!r} not in state error: {message}"


def config_vars(text: str) -> dict:
    return parse_ecs_config(text)


def auth_data(text: str) -> dict:
    return json.loads(config_vars(text)["ECS_ENGINE_AUTH_DATA"])


# --- registry credentials ----------------------------------------------------------------------

CREDENTIAL_FORMS = {
    # Docker's ~/.docker/config.json, Hub spelled as docker CLI writes it.
    "docker-config-json": ({"auths": {HUB: {"auth": b64(f"{USER}:{SECRET}")}}}, HUB),
    # ... and Hub spelled "docker.io", which the agent would never match: must become the Hub key.
    "docker-config-json-docker.io": ({"auths": {"docker.io": {"auth": b64(f"{USER}:{SECRET}")}}},
                                     HUB),
    # The legacy dockercfg map (no "auths" wrapper), with an email.
    "legacy-dockercfg": ({"index.docker.io": {"auth": b64(f"{USER}:{SECRET}"),
                                              "email": "ops@example.com"}}, HUB),
    # Plain username/password without registry: Docker Hub.
    "username-password": ({"username": USER, "password": SECRET}, HUB),
    # Plain username/password for a private registry.
    "username-password-registry": ({"username": USER, "password": SECRET,
                                    "registry": "https://registry.example.com"},
                                   "registry.example.com"),
}


@pytest.mark.parametrize("form", CREDENTIAL_FORMS)
def test_s3_credentials_in_every_form_become_one_dockercfg(form, moto, imds, ecs_boot):
    body, key = CREDENTIAL_FORMS[form]
    loc = put_s3(moto, "creds-bucket", f"registry/{form}.json", json.dumps(body))
    boot_env(imds, tags_for(**{"ecs-boot:registry-auth": loc}))
    ecs_boot.write_config(FAST)

    shown = render(ecs_boot, "--show-secrets")
    assert shown.returncode == 0, shown.stderr
    values = config_vars(shown.stdout)
    assert values["ECS_CLUSTER"] == "prod-web"
    assert values["ECS_ENGINE_AUTH_TYPE"] == "dockercfg"
    data = auth_data(shown.stdout)
    assert list(data) == [key], data
    assert data[key]["auth"] == SECRET_B64
    assert base64.b64decode(data[key]["auth"]).decode() == f"{USER}:{SECRET}"
    if form == "legacy-dockercfg":
        assert data[key]["email"] == "ops@example.com"
    # One line, literally: ecs-init has no quoting or continuation.
    assert sum(1 for line in shown.stdout.splitlines()
               if line.startswith("ECS_ENGINE_AUTH_DATA=")) == 1

    masked = render(ecs_boot)
    assert masked.returncode == 0, masked.stderr
    assert SECRET not in masked.stdout + masked.stderr
    assert SECRET_B64 not in masked.stdout + masked.stderr
    assert "ECS_ENGINE_AUTH_DATA=<secret sha256:" in masked.stdout
    # Apart from the secret, render shows exactly the same file.
    strip = lambda t: [l for l in t.splitlines() if not l.startswith("ECS_ENGINE_AUTH_DATA=")]
    assert strip(masked.stdout) == strip(shown.stdout)


def test_docker_hub_key_is_exactly_the_one_the_agent_matches(world, ecs_boot, imds):
    """build_world's default: Docker config.json in S3 for Docker Hub."""
    ecs_boot.write_config(FAST)
    shown = render(ecs_boot, "--show-secrets")
    assert shown.returncode == 0, shown.stderr
    data = auth_data(shown.stdout)
    assert list(data) == ["https://index.docker.io/v1/"]
    assert config_vars(shown.stdout)["ECS_CLUSTER"] == world.cluster


def test_ssm_securestring_credentials(moto, imds, ecs_boot):
    loc = put_ssm(moto, "/prod/registry-auth",
                  json.dumps({"auths": {HUB: {"auth": b64(f"{USER}:{SECRET}")}}}))
    boot_env(imds, tags_for(**{"ecs-boot:registry-auth": loc}))
    ecs_boot.write_config(FAST)
    shown = render(ecs_boot, "--show-secrets")
    assert shown.returncode == 0, shown.stderr
    assert auth_data(shown.stdout)[HUB]["auth"] == SECRET_B64
    # Decrypted: moto returns "kms:<key>:<value>" without WithDecryption.
    assert "kms:" not in shown.stdout


def test_plain_ssm_string_parameter_is_refused_naming_it(moto, imds, ecs_boot):
    loc = put_ssm(moto, "/prod/plain-auth",
                  json.dumps({"username": USER, "password": SECRET}), kind="String")
    boot_env(imds, tags_for(**{"ecs-boot:registry-auth": loc}))
    ecs_boot.write_config(FAST)

    out = render(ecs_boot)
    assert out.returncode != 0
    assert "ssm:/prod/plain-auth" in out.stderr and "SecureString" in out.stderr, out.stderr
    assert SECRET not in out.stdout + out.stderr

    run = run_config_phase(ecs_boot)
    assert_failed_run(run, ecs_boot, "ssm:/prod/plain-auth", "SecureString")
    assert not ecs_boot.ecs_config.exists()
    assert SECRET not in run.log + ecs_boot.state_file.read_text()


@pytest.mark.parametrize("case", ["not-json", "no-colon-in-auth", "wrong-shape", "missing"])
def test_bad_or_missing_s3_credentials_keep_the_previous_ecs_config(case, moto, imds, ecs_boot):
    loc = put_s3(moto, "creds-bucket", "registry/config.json",
                 json.dumps({"auths": {HUB: {"auth": b64(f"{USER}:{SECRET}")}}}))
    boot_env(imds, tags_for(**{"ecs-boot:registry-auth": loc}))
    ecs_boot.write_config(FAST)
    first = run_config_phase(ecs_boot)
    assert first.ok, first.log
    before = ecs_boot.ecs_config.read_bytes()
    assert SECRET_B64.encode() in before

    s3 = moto.client("s3")
    if case == "missing":
        s3.delete_object(Bucket="creds-bucket", Key="registry/config.json")
        needles = ["s3://creds-bucket/registry/config.json", "NoSuchKey"]
    else:
        body = {
            # Truncated JSON that contains the secret: the error must not quote it.
            "not-json": '{"username": "%s", "password": "%s"' % (USER, SECRET),
            "no-colon-in-auth": json.dumps({"auths": {HUB: {"auth": b64(SECRET)}}}),
            "wrong-shape": json.dumps({"auths": SECRET}),
        }[case]
        put_s3(moto, "creds-bucket", "registry/config.json", body)
        needles = ["s3://creds-bucket/registry/config.json"]

    out = render(ecs_boot)
    assert out.returncode != 0
    for n in needles:
        assert n in out.stderr, out.stderr
    assert SECRET not in out.stdout + out.stderr

    second = run_config_phase(ecs_boot)
    assert_failed_run(second, ecs_boot, *needles)
    assert ecs_boot.ecs_config.read_bytes() == before, "previous ecs.config was touched"
    assert phase(second.state, "credentials")["status"] == "failed"
    seen = (second.log + ecs_boot.state_file.read_text() + ecs_boot.run("status").stdout
            + ecs_boot.run("status", "--json").stdout)
    assert SECRET not in seen and SECRET_B64 not in seen


# --- tags: attributes and settings -------------------------------------------------------------

def test_attributes_and_allowed_settings_from_tags(imds, ecs_boot):
    boot_env(imds, tags_for(**{
        "ecs-boot:attribute:stack": "blue",
        "ecs-boot:attribute:gpu.model": "none",
        "ecs-boot:setting:ECS_LOGLEVEL": "debug",
        "ecs-boot:setting:ECS_CONTAINER_STOP_TIMEOUT": "2m",
        "ecs-boot:setting:ECS_CONTAINER_INSTANCE_TAGS": '{"team":"web","cost-center":"42"}',
        "ecs-boot:setting:ECS_ENABLE_SPOT_INSTANCE_DRAINING": "true",
    }))
    ecs_boot.write_config(FAST + '[ecs.attributes]\nteam = "core"\nstack = "green"\n')
    out = render(ecs_boot)
    assert out.returncode == 0, out.stderr
    v = config_vars(out.stdout)
    assert v["ECS_CLUSTER"] == "prod-web"
    # Tag attributes merge over baked ones into one JSON object the agent parses.
    # ... plus ecs-boot's own readiness attribute, false until the launch is done.
    assert json.loads(v["ECS_INSTANCE_ATTRIBUTES"]) == {
        "stack": "blue", "gpu.model": "none", "team": "core", "ecs-boot.ready": "false"}
    assert v["ECS_LOGLEVEL"] == "debug"
    assert v["ECS_CONTAINER_STOP_TIMEOUT"] == "2m"
    assert json.loads(v["ECS_CONTAINER_INSTANCE_TAGS"]) == {"team": "web", "cost-center": "42"}
    assert v["ECS_ENABLE_SPOT_INSTANCE_DRAINING"] == "true"
    # Unrelated tags never reach ecs.config; no registry auth configured, none written.
    assert "ecs-node" not in out.stdout
    assert "ECS_ENGINE_AUTH_DATA" not in v and "ECS_ENGINE_AUTH_TYPE" not in v


@pytest.mark.parametrize("setting, value, needles", [
    ("ECS_CONTAINER_INSTANCE_TAGS", '{"team":', ["ECS_CONTAINER_INSTANCE_TAGS", "JSON"]),
    ("ECS_MADE_UP_SETTING", "1", ["ECS_MADE_UP_SETTING"]),
    ("ECS_DISABLE_PRIVILEGED", "false", ["ECS_DISABLE_PRIVILEGED"]),
    ("ECS_ENABLE_TASK_IAM_ROLE", "false", ["ECS_ENABLE_TASK_IAM_ROLE"]),
    ("ECS_ENGINE_AUTH_DATA", '{"evil":{"auth":"eDp5"}}', ["ECS_ENGINE_AUTH_DATA"]),
    ("ECS_LOGLEVEL", '"debug"', ["ECS_LOGLEVEL"]),
])
def test_bad_settings_from_tags_are_refused_naming_the_tag(setting, value, needles, imds,
                                                           ecs_boot):
    boot_env(imds, tags_for(**{f"ecs-boot:setting:{setting}": value}))
    ecs_boot.write_config(FAST)
    out = render(ecs_boot)
    assert out.returncode != 0, out.stdout
    assert f"ecs-boot:setting:{setting}" in out.stderr, out.stderr
    for n in needles:
        assert n in out.stderr, out.stderr
    assert out.stdout == ""

    run = run_config_phase(ecs_boot)
    assert_failed_run(run, ecs_boot, f"ecs-boot:setting:{setting}")
    assert not ecs_boot.ecs_config.exists()


def test_security_settings_from_tags_are_refused_as_security_relevant(imds, ecs_boot):
    boot_env(imds, tags_for(**{"ecs-boot:setting:ECS_ENABLE_TASK_IAM_ROLE": "false"}))
    ecs_boot.write_config(FAST)
    out = render(ecs_boot)
    assert out.returncode != 0
    # The refusal says why, not just "invalid": tags cannot set it, the baked config can.
    text = out.stderr.lower()
    assert "tag" in text and ("baked" in text or "config.toml" in text), out.stderr
    # ... and the baked config may set it.
    ecs_boot.write_config(FAST + '[ecs.settings]\nECS_ENABLE_TASK_IAM_ROLE = "true"\n')
    boot_env(imds)
    ok = render(ecs_boot)
    assert ok.returncode == 0, ok.stderr
    assert config_vars(ok.stdout)["ECS_ENABLE_TASK_IAM_ROLE"] == "true"


@pytest.mark.parametrize("key, value", [
    ("ecs-boot:cluster", "prod\nECS_ENGINE_AUTH_TYPE=docker"),
    ("ecs-boot:cluster", "prod\r"),
    ("ecs-boot:setting:ECS_LOGLEVEL", "info\r\nECS_ENABLE_TASK_IAM_ROLE=false"),
])
def test_tag_values_with_newline_or_cr_are_rejected_and_nothing_is_written(key, value, imds,
                                                                           ecs_boot):
    # Real IMDS serves tag values verbatim, line breaks included.
    tags = tags_for()
    tags[key] = value
    boot_env(imds, tags)
    ecs_boot.write_config(FAST)
    out = render(ecs_boot, "--show-secrets")
    assert out.returncode != 0, out.stdout
    assert key in out.stderr, out.stderr
    assert out.stdout == ""

    run = run_config_phase(ecs_boot)
    assert_failed_run(run, ecs_boot, key)
    assert not ecs_boot.ecs_config.exists()
    assert not (ecs_boot.root / "run/ecs-boot/ecs-config.sha256").exists()


# --- tags: missing, late, disabled ---------------------------------------------------------------

def test_missing_cluster_tag_fails_closed_without_ecs_config(imds, ecs_boot):
    boot_env(imds, {"Name": "ecs-node", "ecs-boot:attribute:stack": "blue"})
    ecs_boot.write_config(FAST)
    t0 = time.monotonic()
    run = run_config_phase(ecs_boot)
    assert_failed_run(run, ecs_boot, "ecs-boot:cluster")
    assert time.monotonic() - t0 < 15, "the [tags] wait of 4 s was not honoured"
    assert not ecs_boot.ecs_config.exists()
    assert phase(run.state, "tags")["status"] == "failed"
    # Never the default cluster: nothing resembling a cluster line anywhere.
    assert "ECS_CLUSTER" not in run.log

    out = render(ecs_boot)
    assert out.returncode != 0 and "ecs-boot:cluster" in out.stderr and out.stdout == ""


def test_tags_arriving_late_within_the_wait_succeed(imds, ecs_boot):
    imds.set_tags({"Name": "ecs-node"})  # ASG tags not propagated yet
    ecs_boot.write_config('[tags]\nwait = "10s"\n[imds]\ntimeout = "5s"\n')
    timer = threading.Timer(2.0, lambda: imds.set_tags(tags_for(**{
        "ecs-boot:attribute:stack": "late"})))
    timer.start()
    try:
        t0 = time.monotonic()
        run = run_config_phase(ecs_boot)
        elapsed = time.monotonic() - t0
    finally:
        timer.cancel()
    assert run.ok, run.log
    assert elapsed >= 2.0
    v = config_vars(ecs_boot.ecs_config.read_text())
    assert v["ECS_CLUSTER"] == "prod-web"
    assert json.loads(v["ECS_INSTANCE_ATTRIBUTES"]) == {"stack": "late", "ecs-boot.ready": "false"}
    assert phase(run.state, "tags")["status"] == "ok"
    assert phase(run.state, "tags")["duration_ms"] >= 1500


def test_tags_hidden_at_first_then_visible_succeed(imds, ecs_boot):
    """Tags in IMDS 404 at first (the list itself), then appear: the same late-propagation case
    as seen through the tags path."""
    imds.set_tags(tags_for(), visible_after=1.0)
    ecs_boot.write_config('[tags]\nwait = "10s"\n[imds]\ntimeout = "5s"\n')
    out = render(ecs_boot)
    assert out.returncode == 0, out.stderr
    assert config_vars(out.stdout)["ECS_CLUSTER"] == "prod-web"


def test_tags_disabled_in_metadata_names_the_option(imds, ecs_boot):
    imds.set_tags(tags_for(), enabled=False)
    ecs_boot.write_config(FAST)
    run = run_config_phase(ecs_boot)
    assert_failed_run(run, ecs_boot)
    text = run.log + run.state["error"]["message"] + run.state["error"]["hint"]
    assert "instance_metadata_tags" in text.lower().replace("-", "_"), text
    assert not ecs_boot.ecs_config.exists()
    out = render(ecs_boot)
    assert out.returncode != 0 and "instance_metadata_tags" in out.stderr.replace("-", "_")


def test_imds_too_slow_for_the_tag_wait_blames_imds_not_the_tags(imds, ecs_boot):
    boot_env(imds)
    imds.set_delay(3.0, "/latest/meta-data/tags")
    ecs_boot.write_config(FAST)
    out = render(ecs_boot)
    assert out.returncode != 0
    assert "IMDS /latest/meta-data/tags/instance" in out.stderr, out.stderr
    assert "missing" not in out.stderr, out.stderr
    assert out.stdout == ""


# --- ecs.config on disk ---------------------------------------------------------------------------

def test_run_writes_0600_atomically_and_records_the_hash(world, ecs_boot):
    ecs_boot.write_config(FAST)
    run = run_config_phase(ecs_boot)
    assert run.ok, run.log
    cfg = ecs_boot.ecs_config
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    data = cfg.read_bytes()
    marker = (ecs_boot.root / "run/ecs-boot/ecs-config.sha256").read_text().strip()
    assert marker == hashlib.sha256(data).hexdigest()
    assert run.state["ecs_config"]["sha256"] == marker
    assert run.state["ecs_config"]["cluster"] == world.cluster
    assert [p.name for p in cfg.parent.iterdir()] == ["ecs.config"], "temp files left behind"
    # What run wrote is exactly what render shows.
    shown = render(ecs_boot, "--show-secrets")
    assert shown.returncode == 0 and shown.stdout.encode() == data


def test_unmanaged_lines_are_kept_and_ours_replaced(world, ecs_boot):
    ecs_boot.ecs_config.parent.mkdir(parents=True)
    ecs_boot.ecs_config.write_text(
        "ECS_LOGLEVEL=warn\n"
        "ECS_CLUSTER=from-user-data\n"
        "MY_TEAM_SETTING=keep me\n"
        "ECS_ENGINE_AUTH_TYPE=docker\n")
    ecs_boot.write_config(FAST)
    run = run_config_phase(ecs_boot)
    assert run.ok, run.log
    text = ecs_boot.ecs_config.read_text()
    lines = text.splitlines()
    assert "ECS_LOGLEVEL=warn" in lines
    assert "MY_TEAM_SETTING=keep me" in lines
    assert "ECS_CLUSTER=from-user-data" not in text
    assert "ECS_ENGINE_AUTH_TYPE=docker" not in lines
    # Every key once: ecs-init keeps the last of duplicates, so ours must be the only one.
    keys = [l.split("=", 1)[0] for l in lines if "=" in l]
    assert len(keys) == len(set(keys)), keys
    v = config_vars(text)
    assert v["ECS_CLUSTER"] == world.cluster and v["ECS_ENGINE_AUTH_TYPE"] == "dockercfg"
    assert any("ECS_CLUSTER" in w for w in run.state.get("warnings", [])), run.state
    assert stat.S_IMODE(ecs_boot.ecs_config.stat().st_mode) == 0o600


def test_rerun_is_byte_identical_and_leaves_mtime_alone(world, ecs_boot):
    ecs_boot.ecs_config.parent.mkdir(parents=True)
    ecs_boot.ecs_config.write_text("ECS_LOGLEVEL=warn\n")
    ecs_boot.write_config(FAST)
    first = run_config_phase(ecs_boot)
    assert first.ok, first.log
    before = ecs_boot.ecs_config.read_bytes()
    mtime = ecs_boot.ecs_config.stat().st_mtime_ns
    inode = ecs_boot.ecs_config.stat().st_ino
    time.sleep(0.05)
    second = run_config_phase(ecs_boot)
    assert second.ok, second.log
    assert ecs_boot.ecs_config.read_bytes() == before
    assert ecs_boot.ecs_config.stat().st_mtime_ns == mtime
    assert ecs_boot.ecs_config.stat().st_ino == inode
    assert "unchanged" in phase(second.state, "ecs-config-write")["detail"]


# --- secrets never leak ---------------------------------------------------------------------------

def test_secret_appears_nowhere_but_ecs_config(make_world, ecs_boot):
    world = make_world(registry_user=USER, registry_password=SECRET)
    ecs_boot.write_config(FAST)
    leaks = {}
    # Even at the most verbose log level (the SDKs log requests and responses at trace).
    run = run_config_phase(ecs_boot, env={"ECS_BOOT_LOG": "trace"})
    assert run.ok, run.log
    leaks["run stderr (trace)"] = run.log
    leaks["state.json"] = ecs_boot.state_file.read_text()
    status = ecs_boot.run("status")
    leaks["status"] = status.stdout + status.stderr
    status_json = ecs_boot.run("status", "--json")
    leaks["status --json"] = status_json.stdout + status_json.stderr
    masked = render(ecs_boot, env={"ECS_BOOT_LOG": "trace"})
    assert masked.returncode == 0, masked.stderr
    leaks["render"] = masked.stdout + masked.stderr
    gate = ecs_boot.run("gate")
    leaks["gate"] = gate.stdout + gate.stderr
    for where, text in leaks.items():
        assert SECRET not in text, f"secret leaked in {where}"
        assert SECRET_B64 not in text, f"base64 secret leaked in {where}"
    # status still says where the credentials came from, and which registries.
    assert world.registry_auth in status.stdout
    doc = json.loads(status_json.stdout)
    assert doc["state"]["ecs_config"]["registries"] == [HUB]

    # The file itself, and render --show-secrets, carry it base64-encoded where the agent reads it.
    on_disk = ecs_boot.ecs_config.read_text()
    assert SECRET not in on_disk
    assert auth_data(on_disk)[HUB]["auth"] == SECRET_B64
    shown = render(ecs_boot, "--show-secrets")
    assert shown.returncode == 0 and auth_data(shown.stdout)[HUB]["auth"] == SECRET_B64
    assert shown.stdout == on_disk


# --- gate and status --------------------------------------------------------------------------------

def spawn_until_written(ecs_boot, timeout: float = 40):
    """Spawns `run` and returns it, still running, once ecs-config-write is ok."""
    proc = ecs_boot.spawn("run")

    def written():
        if proc.poll() is not None:
            raise AssertionError(f"run exited {proc.returncode}:\n{proc.log_path.read_text()}")
        state = read_state(ecs_boot)
        p = phase(state, "ecs-config-write") if state and state.get("pid") == proc.pid else None
        return p and p["status"] == "ok"

    wait_for(written, timeout, what="ecs-config-write ok")
    return proc


def test_gate_and_status_before_during_and_after_a_boot(world, ecs_boot):
    ecs_boot.write_config(FAST)
    gate = ecs_boot.run("gate")
    assert gate.returncode == 1 and "refusing" in gate.stderr
    status = ecs_boot.run("status")
    assert status.returncode == 4, status.stdout
    assert "no state" in status.stdout
    status_json = ecs_boot.run("status", "--json")
    assert status_json.returncode == 4
    assert json.loads(status_json.stdout)["health"] == "no_state"

    # ecs.config written, the daemon goes on (waiting for the ECS agent, which never comes).
    proc = spawn_until_written(ecs_boot)
    # The gate opens a moment after the write (the ready marker follows [[bootstrap]] and the
    # warm-pool check of the target lifecycle state): wait for it, never before the write.
    gate = wait_for(lambda: (g := ecs_boot.run("gate")).returncode == 0 and g, timeout=30,
                    what="the gate to open")
    assert world.cluster in gate.stderr
    status = ecs_boot.run("status")
    assert status.returncode == 3, status.stdout  # in progress
    assert "health: in_progress" in status.stdout and "ecs-config-write" in status.stdout
    doc = json.loads(ecs_boot.run("status", "--json").stdout)
    assert doc["health"] == "in_progress" and doc["daemon_running"] is True
    assert doc["state"]["ecs_config"]["cluster"] == world.cluster

    # A hand edit after the write: the gate refuses, status shows drift.
    with open(ecs_boot.ecs_config, "a") as f:
        f.write("ECS_CLUSTER=default\n")
    gate = ecs_boot.run("gate")
    assert gate.returncode == 1 and "changed" in gate.stderr
    assert "DRIFT" in ecs_boot.run("status").stdout

    # Stopped mid-boot: a boot that never finished is a failure once the daemon is gone.
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    status = ecs_boot.run("status")
    assert status.returncode == 1, status.stdout


def test_status_healthy_once_the_boot_completes(world, ecs_boot, fake_agent):
    """The one test that goes past the config phase: `status` says healthy (exit 0) only when
    the whole boot is done, so a (fake) ECS agent must register."""
    from harness.procs import free_port

    port = free_port()
    ecs_boot.write_config(FAST + f'[ecs_agent]\nintrospection_url = "http://127.0.0.1:{port}"\n'
                          'registration_timeout = "20s"\n')
    proc = spawn_until_written(ecs_boot)
    agent = fake_agent(ecs_boot.ecs_config, port=port)
    agent.wait_registered()
    wait_for(lambda: (read_state(ecs_boot) or {}).get("outcome") == "in_service", 20,
             what="outcome in_service")
    status = ecs_boot.run("status")
    assert status.returncode == 0, status.stdout
    assert "health: healthy" in status.stdout
    assert json.loads(ecs_boot.run("status", "--json").stdout)["health"] == "healthy"
    assert ecs_boot.run("gate").returncode == 0
    assert proc.poll() is None


def test_gate_and_status_after_a_failed_run(imds, ecs_boot):
    boot_env(imds, {"Name": "no-cluster-tag"})
    ecs_boot.write_config(FAST)
    run = run_config_phase(ecs_boot)
    assert_failed_run(run, ecs_boot, "ecs-boot:cluster")
    gate = ecs_boot.run("gate")
    assert gate.returncode == 1, gate.stderr
    status = ecs_boot.run("status")
    assert status.returncode == 1, status.stdout
    assert "health: failed" in status.stdout
    assert "ecs-boot:cluster" in status.stdout and "hint:" in status.stdout
    doc = json.loads(ecs_boot.run("status", "--json").stdout)
    assert doc["health"] == "failed" and doc["state"]["outcome"] == "failed"
    assert doc["state"]["error"]["phase"] == "tags"


def test_gate_closes_when_a_rerun_fails_after_a_good_boot(moto, imds, ecs_boot):
    """ecs-boot restarted within the same boot (systemctl restart) and failed this time: the
    ready marker of the earlier success must not let the agent start on a stale decision."""
    loc = put_s3(moto, "creds-bucket", "auth.json", json.dumps({"username": USER,
                                                                 "password": SECRET}))
    boot_env(imds, tags_for(**{"ecs-boot:registry-auth": loc}))
    ecs_boot.write_config(FAST)
    assert run_config_phase(ecs_boot).ok
    assert ecs_boot.run("gate").returncode == 0
    moto.client("s3").delete_object(Bucket="creds-bucket", Key="auth.json")
    run = run_config_phase(ecs_boot)
    assert run.code == 1, run.log
    gate = ecs_boot.run("gate")
    assert gate.returncode == 1, gate.stderr
    assert ecs_boot.run("status").returncode == 1


# --- IMDS resilience --------------------------------------------------------------------------------

@pytest.mark.parametrize("status, count, prefix", [
    (500, 2, ""),  # the very first requests: the token PUT itself
    (500, 2, "/latest/meta-data/tags"),
    (503, 2, "/latest/dynamic/instance-identity"),
    (429, 2, "/latest/meta-data/tags"),  # IMDS throttling; the SDK alone would not retry it
])
def test_imds_errors_at_first_are_retried(status, count, prefix, world, imds, ecs_boot):
    imds.reset_log()
    imds.fail_next(count, status=status, path_prefix=prefix)
    # The SDK's backoff starts at 1 s: leave room for two retries.
    ecs_boot.write_config('[tags]\nwait = "10s"\n[imds]\ntimeout = "10s"\n')
    run = run_config_phase(ecs_boot)
    assert run.ok, run.log
    hits = [r for r in imds.requests if r["path"].startswith(prefix)]
    assert [r["status"] for r in hits[:count]] == [status] * count, imds.requests
    assert hits[count]["status"] == 200, imds.requests
    assert config_vars(ecs_boot.ecs_config.read_text())["ECS_CLUSTER"] == world.cluster


def test_imds_token_invalidated_mid_run_gets_a_new_token(imds, ecs_boot):
    imds.set_tags({"Name": "ecs-node"})  # run waits for the cluster tag, re-reading tags
    ecs_boot.write_config('[tags]\nwait = "10s"\n[imds]\ntimeout = "5s"\n')
    imds.reset_log()
    proc_started = time.monotonic()

    def invalidate_then_tag():
        imds.invalidate_tokens()
        time.sleep(0.7)
        imds.set_tags(tags_for())

    timer = threading.Timer(1.0, invalidate_then_tag)
    timer.start()
    try:
        run = run_config_phase(ecs_boot)
    finally:
        timer.cancel()
    assert run.ok, run.log
    assert time.monotonic() - proc_started >= 1.0
    assert imds.token_puts >= 2, imds.token_puts
    statuses = [r["status"] for r in imds.requests if r["method"] == "GET"]
    assert 401 in statuses, imds.requests
    # After the 401, a fresh PUT, and GETs succeed again.
    first_401 = next(i for i, r in enumerate(imds.requests) if r["status"] == 401)
    after = imds.requests[first_401:]
    assert any(r["method"] == "PUT" and r["status"] == 200 for r in after), after
    assert any(r["method"] == "GET" and r["status"] == 200 for r in after), after


# --- check-config -----------------------------------------------------------------------------------

@pytest.mark.parametrize("toml, needles", [
    ('[ecs]\nclustre = "prod"\n', ["clustre"]),
    ('[ecs.settings]\nECS_LOGLEVEL = "loud"\n', ["ecs.settings.ECS_LOGLEVEL"]),
    ('[ecs.settings]\nECS_NOT_A_THING = "1"\n', ["ECS_NOT_A_THING"]),
    ('[ecs]\nregistry_auth = "https://example.com/creds"\n', ["ecs.registry_auth"]),
    ('[tags]\nwait = "soon"\n', ["wait"]),
])
def test_check_config_names_the_bad_key(toml, needles, ecs_boot, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    out = ecs_boot.run("check-config", str(path))
    assert out.returncode != 0, out.stdout
    assert str(path) in out.stderr, out.stderr
    for n in needles:
        assert n in out.stderr, out.stderr


def test_check_config_accepts_a_good_file_and_run_refuses_a_bad_one(imds, ecs_boot, tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[ecs]\ncluster = "baked"\n[ecs.settings]\nECS_ENABLE_TASK_IAM_ROLE = "true"\n'
                    '[tags]\nwait = "4s"\n')
    out = ecs_boot.run("check-config", str(good))
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout
    # A baked cluster means no tag is required.
    boot_env(imds, {"Name": "x"})
    ecs_boot.write_config(good.read_text())
    r = render(ecs_boot)
    assert r.returncode == 0, r.stderr
    assert config_vars(r.stdout)["ECS_CLUSTER"] == "baked"

    ecs_boot.write_config('[ecs]\nclustre = "prod"\n')
    run = run_config_phase(ecs_boot)
    assert run.code == 1 and "clustre" in run.log, run.log
    assert not ecs_boot.ecs_config.exists()
