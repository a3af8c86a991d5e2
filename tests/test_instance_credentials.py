"""The instance role: on EC2 nothing sets AWS_ACCESS_KEY_ID, and the SDK takes ecs-boot's
credentials from IMDS (meta-data/iam/security-credentials/<role>, with an IMDSv2 token), the
temporary credentials of the instance profile the Terraform module attaches. Every other test
passes static keys in the environment, so this is the one that proves the path an instance takes.

Observable at both ends: the fake IMDS logs each metadata read, moto's call log records the access
key ID each call was signed with and whether a session token came along (never the token).
"""

from __future__ import annotations

from test_boot_path import FAST, config_vars, render

ROLE = "ecs-boot-node"
ROLE_KEY = "ASIAECSBOOTROLEKEY01"
ROLE_SECRET = "r0le-S3cret-Zq9-w4lrus-never-logged"
ROLE_TOKEN = "IQoJb3JpZ2luX2VjEOT-ecs-boot-session-token-Zz81"
# The environment an instance has: no static keys (None removes a variable from the harness's).
NO_STATIC_KEYS = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}


def test_calls_are_signed_with_the_instance_roles_credentials_from_imds(world, imds, moto,
                                                                        ecs_boot):
    imds.set_role(ROLE, ROLE_KEY, ROLE_SECRET, ROLE_TOKEN)
    ecs_boot.write_config(FAST)
    moto.reset_calls()
    out = render(ecs_boot, "--show-secrets", env=NO_STATIC_KEYS)
    assert out.returncode == 0, out.stderr
    assert config_vars(out.stdout)["ECS_CLUSTER"] == world.cluster

    # The registry credentials' fetch (the world keeps them in S3) went out as the role.
    fetched = moto.calls(action="GetObject", source="client")
    assert fetched, moto.calls(source="client")
    assert all(c["access_key"] == ROLE_KEY and c["session_token"] for c in fetched), fetched
    # Read through IMDSv2: a token (the fake answers 401 without one), the role, its credentials.
    read = [(r["method"], r["path"]) for r in imds.requests if r["status"] == 200]
    assert ("PUT", "/latest/api/token") in read
    assert ("GET", f"/latest/meta-data/iam/security-credentials/{ROLE}") in read, read
    for secret in (ROLE_SECRET, ROLE_TOKEN):
        assert secret not in out.stdout + out.stderr


def test_no_role_and_no_static_keys_fails_closed_naming_the_credentials(world, imds, moto,
                                                                        ecs_boot):
    ecs_boot.write_config(FAST)
    moto.reset_calls()
    out = render(ecs_boot, env=NO_STATIC_KEYS)
    assert out.returncode != 0, out.stdout
    # One clear line naming what is missing, and a hint about the role, not the object's
    # permissions (the request never left); not the SDK chain's nested debug output.
    assert "no AWS credentials" in out.stderr, out.stderr
    assert "instance profile" in out.stderr, out.stderr
    assert "DispatchFailure" not in out.stderr and "ProviderAttempt" not in out.stderr, out.stderr
    assert out.stdout == ""  # nothing rendered without the registry credentials
    # Nothing reached AWS unsigned.
    assert not [c for c in moto.calls(source="client") if c["accepted"]]
