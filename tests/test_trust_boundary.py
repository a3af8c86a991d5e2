"""The trust boundary: whoever can tag an instance gets no more than placement.

Tags (and the fragments a tag names) are the untrusted channel; the baked config and
/etc/ecs-boot/config.d (user data) are the trusted one and decide what the tags may reach. Every
test here drives the real binary against moto and asserts on the calls moto received.
"""
import json

import pytest

from harness.world import docker_config
from lifecycle_helpers import boot_config, client_calls, spawn_run, status
from harness.procs import free_port, wait_for

MARKER = "MARKER-5ecret-7f3a"


def put(moto, bucket, key, body):
    s3 = moto.client("s3")
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return f"s3://{bucket}/{key}"


def fetched(moto, bucket):
    return [c for c in client_calls(moto, "GetObject") if c["params"].get("Bucket") == bucket]


def everything_ecs_boot_said(ecs_boot, *outs) -> str:
    """Every place a leaked secret could land: outputs, state.json, status --json, status table."""
    parts = [o.stdout + o.stderr for o in outs]
    if ecs_boot.state_file.exists():
        parts.append(ecs_boot.state_file.read_text())
    for args in (("status", "--json"), ("status",)):
        out = ecs_boot.run(*args, timeout=20)
        parts.append(out.stdout + out.stderr)
    return "\n".join(parts)


# --- locations: checked before any request ------------------------------------------------------


def test_fragment_outside_the_allowed_prefixes_is_refused_before_any_fetch(moto, make_world,
                                                                           ecs_boot):
    loc = put(moto, "someone-elses-bucket", "frag.toml", '[ecs]\ncluster = "x"\n')
    make_world(tags={"ecs-boot:config": loc})
    moto.reset_calls()
    out = ecs_boot.run("render")
    assert out.returncode == 1
    assert "tag ecs-boot:config" in out.stderr and "fragment_prefixes" in out.stderr, out.stderr
    assert fetched(moto, "someone-elses-bucket") == [], "fetched before checking the allowlist"


@pytest.mark.parametrize("location", [
    "s3://demo-boot-config/fragments/../registry/config.json",
    "s3://demo-boot-config/fragments//x.toml",
    "s3://demo-boot-config/fragments/%2e%2e/registry/config.json",
    "ssm:arn:aws:ssm:us-east-1:111122223333:parameter/shared/frag",
])
def test_locations_that_could_climb_out_of_a_prefix_are_refused(moto, make_world, ecs_boot,
                                                                location):
    make_world(tags={"ecs-boot:config": location})
    moto.reset_calls()
    out = ecs_boot.run("render")
    assert out.returncode == 1 and "ecs-boot:config" in out.stderr, out.stderr
    assert client_calls(moto, "GetObject") == [] and client_calls(moto, "GetParameter") == []


def test_registry_auth_tag_outside_the_allowed_prefixes_is_refused(moto, make_world, ecs_boot):
    evil = put(moto, "attacker-bucket", "creds.json",
               json.dumps(docker_config("https://index.docker.io/v1/", "evil", "pw")))
    make_world(tags={"ecs-boot:registry-auth": evil})
    moto.reset_calls()
    out = ecs_boot.run("render")
    assert out.returncode == 1 and "registry_auth_prefixes" in out.stderr, out.stderr
    assert fetched(moto, "attacker-bucket") == []


def test_no_allowlist_means_no_tag_locations_at_all(moto, make_world, ecs_boot):
    """A stock AMI opens nothing: a credentials tag is refused until an administrator allows a
    prefix (fail closed)."""
    make_world()
    ecs_boot.trusted_worlds = None
    out = ecs_boot.run("render")
    assert out.returncode == 1 and "registry_auth_prefixes = []" in out.stderr, out.stderr


def test_trusted_registry_auth_needs_no_allowlist(moto, make_world, ecs_boot):
    world = make_world(tags={"ecs-boot:registry-auth": None})
    loc = put(moto, "platform-creds", "hub.json",
              json.dumps(docker_config(world.registry, "ops", "trusted-pass")))
    ecs_boot.trusted_worlds = None
    (ecs_boot.config_d).mkdir(parents=True, exist_ok=True)
    (ecs_boot.config_d / "50-user-data.toml").write_text(f'[ecs]\nregistry_auth = "{loc}"\n')
    out = ecs_boot.run("render")
    assert out.returncode == 0, out.stderr
    assert "ECS_ENGINE_AUTH_TYPE=dockercfg" in out.stdout


# --- fragments: only what the trusted config opens ----------------------------------------------


ROOT_FRAGMENT = """
[[container]]
name = "innocent"
image = "busybox"
privileged = true
binds = ["/:/host"]
pid_mode = "host"
"""


@pytest.mark.parametrize("fragment, key", [
    (ROOT_FRAGMENT, "container"),
    ('[drain]\nenabled = false\n', "drain.enabled"),
    ('[proxy]\nhttps_proxy = "http://attacker:3128"\n', "proxy.https_proxy"),
    ('[trust]\nregistry_auth_prefixes = ["s3://attacker-bucket/"]\n',
     "trust.registry_auth_prefixes"),
])
def test_a_fragment_cannot_reach_beyond_placement(moto, make_world, ecs_boot, fake_agent,
                                                  fragment, key):
    """A tag-named fragment that tries for root (or to skip the drain, or to proxy the agent's
    traffic) fails the boot: ABANDON with a cause that names the key, no container started."""
    loc = put(moto, "demo-boot-config", "fragments/web.toml", fragment)
    world = make_world(tags={"ecs-boot:config": loc})
    port = free_port()
    ecs_boot.write_config(boot_config(port))
    proc = spawn_run(ecs_boot)
    abandons = lambda: [c for c in client_calls(moto, "CompleteLifecycleAction")  # noqa: E731
                        if c["params"].get("LifecycleActionResult") == "ABANDON"]
    wait_for(abandons, timeout=30, what="ABANDON")
    proc.kill()
    assert not ecs_boot.ecs_config.exists(), "ecs.config written from a refused fragment"
    doc = status(ecs_boot)
    cause = json.dumps(doc)
    assert key in cause and "not open to fragments" in cause, cause
    assert moto.lifecycle_state(world.asg, world.instance_id) != "InService"


def test_the_trusted_config_can_open_a_key(moto, make_world, ecs_boot):
    loc = put(moto, "demo-boot-config", "fragments/web.toml", '[drain]\ndeadline = "7m"\n'
              '[ecs.settings]\nECS_CONTAINER_STOP_TIMEOUT = "45s"\n')
    make_world(tags={"ecs-boot:config": loc})
    ecs_boot.config_d.mkdir(parents=True, exist_ok=True)
    (ecs_boot.config_d / "60-open.toml").write_text(
        '[trust]\nfragment_keys = ["ecs.settings", "drain.deadline"]\n')
    out = ecs_boot.run("render")
    assert out.returncode == 0, out.stderr
    assert "ECS_CONTAINER_STOP_TIMEOUT=45s" in out.stdout


# --- fetched content never leaks ----------------------------------------------------------------


@pytest.mark.parametrize("store", ["s3", "ssm"])
def test_a_fragment_tag_pointed_at_a_secret_never_leaks_it(moto, make_world, ecs_boot, store):
    """An administrator opened a broad prefix; an attacker points `ecs-boot:config` at the
    registry credentials (or any SecureString). The boot fails, and the secret appears nowhere:
    not in errors, logs, state.json, status or render."""
    if store == "s3":
        loc = put(moto, "demo-boot-config", "fragments/creds.json",
                  json.dumps(docker_config("https://index.docker.io/v1/", "u", MARKER)))
    else:
        moto.client("ssm").put_parameter(Name="/demo/fragments/db", Type="SecureString",
                                         Value=f"password = {MARKER}\n{MARKER}")
        loc = "ssm:/demo/fragments/db"
    make_world(tags={"ecs-boot:config": loc})
    rendered = ecs_boot.run("render")
    assert rendered.returncode == 1
    assert loc in rendered.stderr, rendered.stderr
    ran = ecs_boot.run("run", timeout=60, env={"RUST_LOG": "debug"})
    said = everything_ecs_boot_said(ecs_boot, rendered, ran)
    assert MARKER not in said


# --- the trusted channel: config.d ---------------------------------------------------------------


def test_config_d_layers_in_name_order_with_identity_placeholders(moto, make_world, ecs_boot):
    world = make_world(tags={"ecs-boot:cluster": None})
    ecs_boot.config_d.mkdir(parents=True, exist_ok=True)
    (ecs_boot.config_d / "10-group.toml").write_text(
        '[ecs]\ncluster = "wrong"\n[ecs.extra_settings]\nECS_FUTURE_KNOB = "on"\n')
    (ecs_boot.config_d / "20-group.toml").write_text(
        f'[ecs]\ncluster = "{world.cluster}"\n'
        '[ecs.attributes]\nhome = "${region}-${account_id}"\n'
        '[ecs.extra_settings]\nECS_CONTAINER_STOP_TIMEOUT = "1m"\n'
        '[proxy]\nhttps_proxy = "http://proxy.internal:3128"\nno_proxy = [".internal"]\n')
    out = ecs_boot.run("render")
    assert out.returncode == 0, out.stderr
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert lines["ECS_CLUSTER"] == world.cluster
    assert json.loads(lines["ECS_INSTANCE_ATTRIBUTES"])["home"] == "us-east-1-123456789012"
    assert lines["ECS_FUTURE_KNOB"] == "on" and lines["ECS_CONTAINER_STOP_TIMEOUT"] == "1m"
    assert lines["HTTPS_PROXY"] == "http://proxy.internal:3128"
    no_proxy = lines["NO_PROXY"].split(",")
    for local in ("169.254.169.254", "169.254.170.2", "/var/run/docker.sock", ".internal"):
        assert local in no_proxy, no_proxy


@pytest.mark.parametrize("tag", ["ecs-boot:setting:HTTPS_PROXY",
                                 "ecs-boot:setting:ECS_FUTURE_KNOB"])
def test_tags_cannot_set_proxies_or_unknown_variables(moto, make_world, ecs_boot, tag):
    make_world(tags={tag: "http://attacker:3128"})
    out = ecs_boot.run("render")
    assert out.returncode == 1 and tag.rsplit(":", 1)[1] in out.stderr, out.stderr


def test_a_bad_placeholder_names_the_file_and_key(moto, make_world, ecs_boot):
    make_world()
    ecs_boot.config_d.mkdir(parents=True, exist_ok=True)
    (ecs_boot.config_d / "50-user-data.toml").write_text('[ecs]\ncluster = "c-${cluster}"\n')
    out = ecs_boot.run("render")
    assert out.returncode == 1
    assert "50-user-data.toml" in out.stderr and "ecs.cluster" in out.stderr, out.stderr


# --- preflight: what the new AMI would refuse, before rolling it out -----------------------------


def test_preflight_lists_every_tag_the_new_rules_refuse(moto, make_world, ecs_boot):
    """Live against a group's propagated tags (operator credentials) and offline from given tags:
    every refusal listed with its reason, exit 1; clean tags exit 0."""
    world = make_world(tags={"ecs-boot:config": "s3://old-bucket/fragments/web.toml",
                             "ecs-boot:setting:ECS_ENABLE_TASK_IAM_ROLE": "true"})
    ecs_boot.trusted_worlds = None  # the new AMI, before anyone wrote the allowlists
    out = ecs_boot.run("preflight", "--asg", world.asg, "--json")
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    refused = {r["tag"]: r["reason"] for r in doc["refusals"]}
    assert set(refused) == {"ecs-boot:config", "ecs-boot:registry-auth",
                            "ecs-boot:setting:ECS_ENABLE_TASK_IAM_ROLE"}, refused
    assert "fragment_prefixes" in refused["ecs-boot:config"]
    assert any(c["action"] == "DescribeTags" for c in moto.calls(source="client"))

    offline = ecs_boot.run("preflight", "--tag", "ecs-boot:cluster=web",
                           "--tag", "ecs-boot:attribute:zone=a")
    assert offline.returncode == 0, offline.stdout + offline.stderr
    table = ecs_boot.run("preflight", "--tag", "ecs-boot:cluster=\x1b[8mhidden")
    assert table.returncode == 1 and "\x1b" not in table.stdout, table.stdout


# --- proxies for Docker too ----------------------------------------------------------------------


def test_docker_gets_the_trusted_proxy_through_an_environment_file(ecs_boot):
    """ecs-boot-docker-proxy.service writes what docker.service's drop-in reads, before the
    engine starts; without [proxy] there is no file; no placeholder can reach it (it runs before
    IMDS is asked anything)."""
    ecs_boot.config_d.mkdir(parents=True, exist_ok=True)
    dropin = ecs_boot.config_d / "50-user-data.toml"
    env_file = ecs_boot.root / "run/ecs-boot/docker-proxy.env"
    dropin.write_text('[proxy]\nhttps_proxy = "http://proxy.internal:3128"\n')
    out = ecs_boot.run("docker-proxy")
    assert out.returncode == 0, out.stderr
    lines = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
    assert lines["HTTPS_PROXY"] == "http://proxy.internal:3128"
    assert "169.254.169.254" in lines["NO_PROXY"] and "169.254.170.2" in lines["NO_PROXY"]
    dropin.write_text('[proxy]\nhttps_proxy = "http://proxy.${region}.internal:3128"\n')
    bad = ecs_boot.run("docker-proxy")
    assert bad.returncode == 1 and "proxy.https_proxy" in bad.stderr, bad.stderr
    dropin.write_text("")
    assert ecs_boot.run("docker-proxy").returncode == 0
    assert not env_file.exists()
