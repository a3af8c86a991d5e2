"""Issue 22 item 5 in the simulated instance (systemd in a container, tests/sim): proofs that
tests/test_evidence.py and tests/test_health.py give with ecs-boot run as a plain process, here
with ecs-boot under systemd as the AMI runs it.

- A failed boot leaves its evidence in S3 before the ABANDON, and the journal it uploads is
  ecs-boot's real journald record (a plain process only gets the "(no journal ...)" placeholder).
- A killed essential system container flips `ecs-boot.ready` to false at ECS.

Everything is asserted on moto's call log. The recorder and health settings come through
config.d, the trusted channel, as the launch template's user data writes them.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "sim"))

from instance import Instance, docker, engine_reachable, wait_for, write_env_file  # noqa: E402
from harness.world import trust_dropin  # noqa: E402
from test_sim_instance import (  # noqa: E402,F401 (sim_image: fixture)
    BOOT_TIMEOUT, completions, report, sim_image)

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not engine_reachable(),
                                 reason="no Docker engine reachable (docker info failed)")]

USER = "ci-robot"
SECRET = "Sim-Vv9-corr3ct-h0rse-SECRET-41xK"
BUCKET = "sim-evidence"
PREFIX = "boots/"
JOURNAL = "ecs-boot.journal.txt"
FILES = {"state.json", JOURNAL, "ecs-agent.log", "ecs.config.masked", "containers.log"}
NEEDLES = {
    "password": SECRET,
    "base64(user:password)": base64.b64encode(f"{USER}:{SECRET}".encode()).decode(),
    "base64(password)": base64.b64encode(SECRET.encode()).decode(),
}
# Runs on the host's engine through the instance's mounted socket (tests/sim/README.md), named
# for this file; the label makes Instance.destroy remove it with the instance.
WATCHED = "ecs-boot-siminst-watched"


def boot(name: str, moto, imds, tmp: Path, image: str, world, config_d: str,
         extra_env: dict | None = None) -> Instance:
    """Boot with the world's trust allowlists plus `config_d` in config.d, as user data would."""
    env_file = write_env_file(tmp / f"{name}.env", moto.url, imds.url, extra_env)
    user_data = tmp / f"{name}-user-data.toml"
    user_data.write_text(trust_dropin([world]) + config_d)
    return Instance.boot(name, env_file, image, user_data)


def client_calls(moto, action: str) -> list[dict]:
    return [c for c in moto.calls(source="client") if c["action"] == action]


# --- a failed boot leaves its evidence in S3 ---------------------------------------------------


def test_a_failed_boot_under_systemd_uploads_its_journal_before_the_abandon(
        sim_image, moto, imds, make_world, tmp_path):
    world = make_world(name="simrec", registry_user=USER, registry_password=SECRET)
    moto.client("s3").create_bucket(Bucket=BUCKET)
    # The agent never registers (FAKE_ECS_NEVER_REGISTER); ecs-boot gives up after 5 s.
    config_d = (f'[recorder]\nlocation = "s3://{BUCKET}/{PREFIX}"\ntimeout = "10s"\n'
                '[ecs_agent]\nregistration_timeout = "5s"\n')
    instance = boot("ecs-boot-siminst-rec", moto, imds, tmp_path, sim_image, world, config_d,
                    {"FAKE_ECS_NEVER_REGISTER": "1"})
    try:
        abandons = wait_for(lambda: completions(moto, world, world.launch_hook), BOOT_TIMEOUT,
                            "the launch hook's completion")
        assert [c["result"] for c in abandons][:1] == ["ABANDON"], abandons
        # ecs.config really carried the secret (the recorder masks it).
        written = instance.sh("cat", "/etc/ecs/ecs.config").stdout
        assert NEEDLES["base64(user:password)"] in written

        first_abandon = min(c["time"] for c in client_calls(moto, "CompleteLifecycleAction"))
        puts = client_calls(moto, "PutObject")
        before = [c for c in puts if c["time"] < first_abandon]
        assert before and all(c["accepted"] for c in before), puts
        folders = {c["params"]["Key"].rsplit("/", 1)[0] + "/" for c in before}
        assert len(folders) == 1, folders
        folder = folders.pop()
        # <prefix><instance-id>/<timestamp>/
        assert folder.startswith(f"{PREFIX}{world.instance_id}/"), folder
        assert folder[len(f"{PREFIX}{world.instance_id}/"):].count("/") == 1, folder
        assert all(c["params"]["Bucket"] == BUCKET for c in before), before
        # systemd restarts a failed ecs-boot (Restart=on-failure): a later run may record again,
        # into its own folder, never into the first one after the ABANDON.
        assert not [c for c in puts if c["time"] >= first_abandon
                    and c["params"]["Key"].startswith(folder)], puts

        s3 = moto.client("s3")
        files = {o["Key"][len(folder):]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"]
                 .read().decode()
                 for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=folder).get("Contents", [])}
        assert set(files) == FILES, sorted(files)
        assert {c["params"]["Key"][len(folder):] for c in before} == FILES
        leaks = [(name, what) for name, body in files.items()
                 for what, needle in NEEDLES.items() if needle in body]
        assert not leaks, f"secret uploaded: {leaks}"

        # The journal is journald's record of this boot, not the placeholder a plain process
        # uploads: its lines are messages journald holds for ecs-boot.service in the instance.
        uploaded = [line for line in files[JOURNAL].splitlines() if line.strip()]
        assert uploaded and not files[JOURNAL].startswith("("), files[JOURNAL][:300]
        # (-o cat: the MESSAGE of each entry of the unit, systemd's own lines included.)
        entries = instance.journal("ecs-boot")
        held = {e.get("MESSAGE") for e in entries}
        own = {e.get("MESSAGE") for e in entries if e.get("_COMM") == "ecs-boot"}
        assert all(line in held for line in uploaded), \
            f"uploaded journal lines not in the instance's journal: {uploaded[:5]}"
        assert "Starting ecs-boot.service" in uploaded[0], uploaded[:3]  # from systemd
        assert "recording evidence" in uploaded and "recording evidence" in own, uploaded
        assert "ECS_ENGINE_AUTH_DATA=<secret sha256:" in files["ecs.config.masked"]
    except (TimeoutError, AssertionError) as err:
        pytest.fail(f"{err}{report(instance)}")
    finally:
        instance.destroy()


# --- a killed essential system container flips ecs-boot.ready ----------------------------------


def ready_values(moto, arns: set[str] | None = None) -> list[str]:
    """Every ecs-boot.ready ecs-boot sent, in order (for the given container instances)."""
    return [a["value"] for c in client_calls(moto, "PutAttributes")
            for a in c["params"]["attributes"] if a["name"] == "ecs-boot.ready"
            and (arns is None or a.get("targetId") in arns)]


def test_a_killed_essential_container_marks_the_instance_not_ready(
        sim_image, moto, imds, make_world, tmp_path):
    world = make_world(name="simhealth")
    config_d = (f'[[container]]\nname = "{WATCHED}"\nimage = "ecs-boot-sim-base:latest"\n'
                'pull = "never"\ncommand = ["sh", "-c", "trap \'exit 0\' TERM; sleep infinity & '
                'wait"]\nessential = true\nrestart = "no"\nmin_uptime = "1s"\n'
                'labels = { "ecs-boot-sim" = "system-container" }\n'
                '[health]\nrestart_grace = "2s"\n')
    instance = boot("ecs-boot-siminst-health", moto, imds, tmp_path, sim_image, world, config_d)
    try:
        wait_for(lambda: instance.outcome() == "in_service", BOOT_TIMEOUT, "in_service")
        ecs = moto.client("ecs")
        arns = set(ecs.list_container_instances(cluster=world.cluster)["containerInstanceArns"])
        assert len(arns) == 1, arns
        wait_for(lambda: ready_values(moto, arns) == ["true"], 30,
                 "ecs-boot.ready=true before the launch CONTINUE")
        wait_for(lambda: ((instance.status()[1] or {}).get("state") or {}).get("health"), 30,
                 "the essential-container watch's record")
        assert docker("inspect", "-f", "{{.State.Running}}", WATCHED).stdout.strip() == "true"

        docker("kill", WATCHED)  # the host's engine: the instance's socket is the host's
        wait_for(lambda: ready_values(moto, arns) == ["true", "false"], 30,
                 f"ecs-boot.ready=false after the kill (sent: {ready_values(moto, arns)})")
        described = ecs.describe_container_instances(
            cluster=world.cluster, containerInstances=sorted(arns))["containerInstances"]
        assert [a.get("value") for a in described[0].get("attributes", [])
                if a["name"] == "ecs-boot.ready"] == ["false"]
        table = instance.sh("ecs-boot", "status", check=False)
        assert table.returncode == 1, table.stdout
        assert f"DEAD {WATCHED}: exited with code 137" in table.stdout, table.stdout
        assert "ecs-boot.ready=false" in table.stdout, table.stdout
    except (TimeoutError, AssertionError) as err:
        pytest.fail(f"{err}{report(instance)}")
    finally:
        instance.destroy()


# --- issue 18 item 1: one systemd instance booted from what `terraform apply` made -------------


def test_an_instance_booted_from_the_applied_module_continues_its_launch_hook(
        sim_image, moto, imds, tmp_path):
    """The module applied against moto; the one instance the group launches boots in the
    simulated instance with the launch template's user data and the tags the group propagated,
    all read back from moto (harness/tf_fleet.py). The image runs no cloud-init: the test writes
    the user data's write_files entry into config.d as cloud-init would (tests/sim/boot-instance
    mounts it as /etc/ecs-boot/config.d/50-user-data.toml)."""
    from harness.terraform import TerraformRoot
    from harness.tf_fleet import ROOT_HCL, docker_config_json, launch_view, prepare_moto
    from harness.world import follow_lifecycle

    prepare_moto(moto.client, docker_config_json("https://index.docker.io/v1/", "fleet",
                                                 "fl33t-pass"))
    tf = TerraformRoot.test_root("sim-evidence", ROOT_HCL, tmp_path, moto.url)
    tf.init()
    tf.apply({"agent_settings": {"ECS_IMAGE_PULL_BEHAVIOR": "prefer-cached"}})
    out = tf.outputs()
    asg = moto.client("autoscaling")
    asg.set_desired_capacity(AutoScalingGroupName=out["asg"], DesiredCapacity=1)
    [member] = asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[out["asg"]])["AutoScalingGroups"][0]["Instances"]
    iid = member["InstanceId"]
    assert member["LifecycleState"] == "Pending:Wait"

    view = launch_view(moto.client, iid)
    assert view.template_id == out["launch_template_id"]
    assert view.tags.get("Name") == "fleet", view.tags  # propagated by the group to the instance
    drop_ins = {p: c for p, c in view.config_d.items() if p.startswith("/etc/ecs-boot/config.d/")}
    assert len(drop_ins) == 1 and drop_ins == view.config_d, sorted(view.config_d)
    user_data = tmp_path / "user-data.toml"
    user_data.write_text(next(iter(drop_ins.values())))

    imds.mirror_instance(moto.client("ec2"), iid)
    imds.set_tags_enabled(view.metadata_options.get("InstanceMetadataTags") == "enabled")
    imds.set_target_lifecycle_state("InService")
    follow_lifecycle(imds, iid)
    env_file = write_env_file(tmp_path / "tf.env", moto.url, imds.url)
    instance = Instance.boot("ecs-boot-siminst-tf", env_file, sim_image, user_data)
    try:
        done = wait_for(lambda: [c for c in moto.completions() if c.get("instance") == iid],
                        BOOT_TIMEOUT, "the launch hook's completion")
        assert [(c["hook"], c["result"]) for c in done] == [(out["launch_hook"], "CONTINUE")]
        assert moto.lifecycle_state(out["asg"], iid) == "InService"
        ecs = moto.client("ecs")
        arns = ecs.list_container_instances(cluster=out["cluster"])["containerInstanceArns"]
        [ci] = ecs.describe_container_instances(cluster=out["cluster"],
                                                containerInstances=arns)["containerInstances"]
        assert ci["ec2InstanceId"] == iid and ci["status"] == "ACTIVE"
        # The cluster came from the user data's config.d (the module puts no cluster in tags).
        assert f'cluster = "{out["cluster"]}"' in user_data.read_text()
        # The module's agent setting reached the agent through ecs.config.
        config = instance.sh("cat", "/etc/ecs/ecs.config").stdout
        assert "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached" in config, config
    except (TimeoutError, AssertionError) as err:
        pytest.fail(f"{err}{report(instance)}")
    finally:
        instance.destroy()
