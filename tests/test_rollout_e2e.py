"""A simulated AMI promotion (issue 20): `ecs-boot-fleet rollout` against two environments the
Terraform module made in moto, with the harness's instance refresh booting the replacements as
ecs-boot processes (harness/tf_fleet.py) and SSM Run Command running their real `ecs-boot status`
(harness/ssm_ext.py) for the gates.

The tests run in file order on one apply:
    test_1  a good AMI: dev passes its gates, then (the approval is this test's step) prod
    test_2  a bad AMI whose instances ABANDON: dev stops at the canary and rolls back; prod is
            never touched
    test_3  terraform plan -detailed-exitcode is clean after the rollouts and the rollback

The test drives what AWS and the pipeline would: it boots every instance the group launches, and
once the rollout says a gate passed it moves the harness clock past the refresh's checkpoint delay
or bake time (the time a gate has to decide), so no test waits for real time to pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import refresh, ssm_ext  # noqa: E402
from harness.procs import base_env, wait_for  # noqa: E402
from harness.terraform import TerraformRoot  # noqa: E402
from harness.tf_fleet import (  # noqa: E402
    NETWORK_HCL, REGISTRY_BUCKET, REGISTRY_KEY, Fleet, completions, docker_config_json, ecs_boot_binary,
    launch_view)

pytestmark = pytest.mark.e2e

OLD, GOOD, BAD = "ami-12c6146b", "ami-1e749f67", "ami-1812c061"  # moto's x86_64 images
ENVS = ("dev", "prod")
DELAY = 120  # checkpoint delay and bake time (harness clock): the time a gate has to decide


def parameter(env: str) -> str:
    # One moto account plays both environments' accounts, so each has a parameter of its own.
    return f"/ecs-boot/ami/{env}/x86_64"


ROOT_HCL = NETWORK_HCL + "".join(f"""
module "{env}" {{
  source = "../../"

  name                      = "{env}-fleet"
  vpc_id                    = data.aws_vpc.default.id
  subnet_ids                = data.aws_subnets.default.ids
  max_size                  = 6
  wait_for_capacity_timeout = "0"
  drain_deadline            = 60
  registry_auth             = "s3://{REGISTRY_BUCKET}/{REGISTRY_KEY}"
  ami_ssm_parameter         = "{parameter(env)}"
  tags                      = {{ "ecs-boot:environment" = "{env}" }}
  instance_refresh          = {{ instance_warmup = 0 }}
}}

output "{env}" {{
  value = {{
    asg                = module.{env}.autoscaling_group_name
    launch_template_id = module.{env}.launch_template_id
    launch_hook        = module.{env}.launch_hook_name
  }}
}}
""" for env in ENVS)


def bad_image(view) -> dict:
    """The bad AMI: its ECS agent never registers, so ecs-boot ABANDONs the launch hook."""
    if view.image_id != BAD:
        return {}
    return {"agent_args": ["--never-register"],
            "baked_overrides": {"ecs_agent.registration_timeout": '"3s"'}}


class Stack:
    def __init__(self, moto, tmp: Path):
        self.moto, self.tmp = moto, tmp
        self.tf = TerraformRoot.test_root("rollout-e2e", ROOT_HCL, tmp, moto.url)
        self.out: dict = {}
        self.fleets: dict[str, Fleet] = {}
        self.timings: dict[str, float] = {}
        self.reports: dict[str, dict] = {}

    def client(self, service):
        return self.moto.client(service)

    def asg(self, env: str) -> str:
        return self.out[env]["asg"]

    def group(self, env: str) -> dict:
        return self.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.asg(env)])["AutoScalingGroups"][0]

    def live(self, env: str) -> dict[str, str]:
        return {i: s for i, s in self.fleets[env].group_states().items() if s != "Terminated"}

    def param(self, env: str) -> str:
        return self.client("ssm").get_parameter(Name=parameter(env))["Parameter"]["Value"]

    def sync(self) -> None:
        """What EC2 and SSM do: start what launched, make it a managed node, stop what ended."""
        for fleet in self.fleets.values():
            for iid in fleet.sync():
                ssm_ext.register(iid, fleet.instances[iid].root, binary=str(ecs_boot_binary()))
            fleet.reap()

    def diag(self) -> str:
        return "\n".join(f"--- {iid}\n{inst.log()}" for f in self.fleets.values()
                         for iid, inst in f.instances.items())


@pytest.fixture(scope="module")
def stack(moto_server, tmp_path_factory):
    started = time.monotonic()
    moto_server.reset()
    s = Stack(moto_server, tmp_path_factory.mktemp("rollout-e2e"))
    for env in ENVS:
        s.client("ssm").put_parameter(Name=parameter(env), Value=OLD, Type="String",
                                      Overwrite=True)
    s3 = s.client("s3")
    s3.create_bucket(Bucket=REGISTRY_BUCKET)
    s3.put_object(Bucket=REGISTRY_BUCKET, Key=REGISTRY_KEY,
                  Body=docker_config_json("https://index.docker.io/v1/", "fleet", "p").encode())
    s.tf.init()
    s.tf.apply()
    s.out = s.tf.outputs()
    for env in ENVS:
        s.fleets[env] = Fleet(s.client, moto_server.url, s.asg(env), s.tmp / env,
                              ecs_boot_binary(), quirks=bad_image)
        s.client("autoscaling").set_desired_capacity(AutoScalingGroupName=s.asg(env),
                                                     DesiredCapacity=2)
    s.sync()
    try:
        wait_for(lambda: len([c for e in ENVS for c in completions(s.out[e]["launch_hook"])]) == 4,
                 60, what="four instances through their launch hooks")
    except TimeoutError as err:
        pytest.fail(f"{err}\n{s.diag()}")
    s.timings["setup"] = time.monotonic() - started
    yield s
    for fleet in s.fleets.values():
        fleet.stop_all()
    print(f"\nrollout e2e timings (s): {s.timings}", file=sys.stderr)
    moto_server.reset()


def rollout(stack, env: str, ami: str, tmp: Path) -> tuple[int, dict, str]:
    """Runs `ecs-boot-fleet rollout --environment ENV --ami-from-manifest` as the pipeline's
    stage does, booting instances and releasing checkpoints while it runs."""
    fleet_bin = ecs_boot_binary().with_name("ecs-boot-fleet")
    manifest = tmp / f"manifest-{env}-{ami}.json"
    manifest.write_text(json.dumps({"builds": [{
        "name": "ecs-boot", "packer_run_uuid": "run-1", "artifact_id": f"us-east-1:{ami}",
        "custom_data": {"ami_ssm_parameter": "/ecs-boot/ami/x86_64", "architecture": "x86_64"}}],
        "last_run_uuid": "run-1"}))
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [str(fleet_bin), "rollout", "--environment", env, "--ami-from-manifest", str(manifest),
         "--ami-parameter", parameter(env), "--instance-warmup", "0",
         "--checkpoint-delay", f"{DELAY}s", "--bake-time", f"{DELAY}s",
         "--in-service-budget", "90s", "--collect-timeout", "30s", "--rollback-timeout", "90s",
         "--poll-interval", "200ms"],
        env=base_env(stack.moto.url, "http://127.0.0.1:9", home), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    passed: list[str] = []
    stderr: list[str] = []

    def read_stderr():
        for line in proc.stderr:
            stderr.append(line)
            if line.startswith("rollout: gate ") and " passed" in line:
                passed.append(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    released = 0
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        stack.sync()
        [r, *_] = stack.moto.refreshes(stack.asg(env)) or [None]
        waiting = r and (r["Status"] == "Baking"
                         or (r.get("StatusReason") or "").startswith("Waiting at checkpoint"))
        if waiting and released < len(passed):
            refresh.advance(DELAY + 1)  # the gate decided: let the refresh go on
            released += 1
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    stdout = proc.stdout.read()
    proc.wait()
    reader.join(5)
    stack.sync()
    log = "".join(stderr)
    try:
        report = json.loads(stdout) if stdout.strip() else {}
    except json.JSONDecodeError:
        report = {"unparsed": stdout}
    return proc.returncode, report, log


def refresh_starts(stack, env: str) -> list[dict]:
    return [c["params"] for c in stack.moto.calls(service="autoscaling",
                                                  action="StartInstanceRefresh")
            if c["params"].get("AutoScalingGroupName") == stack.asg(env)]


def test_1_a_good_ami_goes_to_dev_then_after_approval_to_prod(stack, tmp_path):
    started = time.monotonic()
    stack.moto.reset_calls()
    old_dev = set(stack.live("dev"))
    code, report, log = rollout(stack, "dev", GOOD, tmp_path)
    assert code == 0, f"{log}\n{json.dumps(report, indent=1)}\n{stack.diag()}"
    assert report["outcome"] == "promoted" and report["ami"] == GOOD
    assert report["group"] == stack.asg("dev") and report["previous_ami"] == OLD
    assert [(g["name"], g["passed"], len(g["instances"])) for g in report["gates"]] == [
        ("canary", True, 1), ("all", True, 2)], report["gates"]
    # The evidence is each new instance's own boot record, collected over SSM.
    new = set(stack.live("dev"))
    assert not new & old_dev and len(new) == 2
    for gate in report["gates"]:
        for inst in gate["instances"]:
            assert inst["instance_id"] in new
            assert (inst["health"], inst["outcome"], inst["launch_hook"]) == (
                "healthy", "in_service", "CONTINUE")
    sent = {i for c in stack.moto.calls(service="ssm", action="SendCommand")
            for i in c["params"].get("InstanceIds", [])}
    assert new <= sent, "the gates judged instances they never asked"
    # The numbered version, made the default, published, and rolled out with checkpoints.
    [start] = refresh_starts(stack, "dev")
    version = str(report["launch_template"]["version"])
    # (query protocol: the call log holds the flattened parameters)
    assert start["DesiredConfiguration.LaunchTemplate.Version"] == version != "1"
    assert [v for k, v in sorted(start.items())
            if k.startswith("Preferences.CheckpointPercentages.")] == ["50", "100"]
    assert start["Preferences.AutoRollback"] == "true"
    [made] = stack.moto.calls(service="ec2", action="CreateLaunchTemplateVersion")
    assert made["params"]["SourceVersion"] == "1"
    assert stack.param("dev") == GOOD
    assert stack.group("dev")["LaunchTemplate"]["Version"] == version
    assert all(launch_view(stack.client, i).image_id == GOOD for i in new)
    # Production is untouched until the approval.
    assert not refresh_starts(stack, "prod") and stack.param("prod") == OLD
    stack.reports["dev"] = report

    # Approval (CodePipeline's manual action): promote what dev's report names, to prod.
    assert stack.reports["dev"]["ami"] == GOOD
    code, report, log = rollout(stack, "prod", GOOD, tmp_path)
    assert code == 0, f"{log}\n{json.dumps(report, indent=1)}\n{stack.diag()}"
    assert report["group"] == stack.asg("prod") and report["outcome"] == "promoted"
    assert len(refresh_starts(stack, "prod")) == 1
    assert stack.param("prod") == GOOD
    assert all(launch_view(stack.client, i).image_id == GOOD for i in stack.live("prod"))
    stack.timings["promotion"] = time.monotonic() - started


def test_2_a_bad_ami_stops_at_the_canary_and_rolls_back(stack, tmp_path):
    started = time.monotonic()
    stack.moto.reset_calls()
    before = set(stack.live("dev"))
    prod_before = (stack.group("prod")["LaunchTemplate"], set(stack.live("prod")))
    code, report, log = rollout(stack, "dev", BAD, tmp_path)
    assert code == 1, f"{log}\n{json.dumps(report, indent=1)}\n{stack.diag()}"
    assert report["outcome"] == "rolled_back"
    [gate] = report["gates"]
    assert not gate["passed"], gate
    assert "ABANDON" in report["reason"] or "left the group" in report["reason"], report
    # The canary alone was launched, and ecs-boot abandoned it.
    bad_version = str(report["launch_template"]["version"])
    launched = [i for i in stack.fleets["dev"].instances
                if launch_view(stack.client, i).version == int(bad_version)]
    assert len(launched) == 1, launched
    assert [c["result"] for c in completions(stack.out["dev"]["launch_hook"], launched[0])] == [
        "ABANDON"]
    # Everything is as before: the old instances, the parameter, a default and group version
    # holding the old image.
    assert set(stack.live("dev")) == before
    assert stack.param("dev") == GOOD
    restored = report["launch_template"]["restored_version"]
    assert stack.group("dev")["LaunchTemplate"]["Version"] == str(restored)
    lt = stack.client("ec2").describe_launch_templates(
        LaunchTemplateIds=[stack.out["dev"]["launch_template_id"]])["LaunchTemplates"][0]
    assert lt["DefaultVersionNumber"] == lt["LatestVersionNumber"] == restored
    puts = [c["params"]["Value"] for c in stack.moto.calls(service="ssm", action="PutParameter")]
    assert puts == [BAD, GOOD], puts
    # Production: not a single call naming it changed anything.
    assert not refresh_starts(stack, "prod")
    assert (stack.group("prod")["LaunchTemplate"], set(stack.live("prod"))) == prod_before
    assert stack.param("prod") == GOOD
    stack.timings["rollback"] = time.monotonic() - started


def test_3_terraform_plans_nothing_after_the_rollouts_and_the_rollback(stack):
    started = time.monotonic()
    plan = stack.tf.plan()
    assert plan.exit_code == 0, plan.output[-4000:]
    stack.timings["plan"] = time.monotonic() - started
