"""A fleet of simulated instances booted from what the Terraform module created in moto.

Everything an instance gets is read back from moto, never from test constants: the launch
template version it launched from (tag aws:ec2launchtemplate:version) gives its metadata options
and user data (the cloud-init write_files entry is written to <root>/etc/ecs-boot/config.d/, the
trusted channel); its EC2 tags (what the group propagated) and identity go to its own fake IMDS;
the hooks and the group come from the user data and IMDS as on EC2.

One simulated instance here is a plain process tree: ecs-boot `run` with its own --root, its own
fake IMDS and its own fake ECS agent on free loopback ports (the systemd instance of tests/sim
binds 127.0.0.1:51678, so only one of those fits on a host).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import lifecycle
from .imds import FakeImds
from .moto_ext import make_client
from .procs import FakeAgent, base_env, free_port, link_host, wait_for
from .world import follow_lifecycle

NAME = "fleet"
REGISTRY_BUCKET = f"{NAME}-boot-config"
REGISTRY_KEY = "registry/config.json"
AMI_PARAMETER = "/ecs-boot/ami/x86_64"  # the module's default (architecture x86_64)
AMI = "ami-12c6146b"  # one of moto's built-in AMIs

# moto's default VPC and its subnets, where the test roots put their groups.
NETWORK_HCL = """
data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}
"""

# The root a user would write: the module with the default VPC, credentials in S3, the AMI from
# the SSM parameter the Packer build publishes. Scaling is left to "managed scaling" (the test).
ROOT_HCL = NETWORK_HCL + """
variable "agent_settings" {
  type = map(string)
}

module "fleet" {
  source = "../../"

  name                      = "%(name)s"
  vpc_id                    = data.aws_vpc.default.id
  subnet_ids                = data.aws_subnets.default.ids
  max_size                  = 6
  wait_for_capacity_timeout = "0"
  drain_deadline            = 60
  registry_auth             = "s3://%(bucket)s/%(key)s"
  agent_settings            = var.agent_settings
}

output "asg" {
  value = module.fleet.autoscaling_group_name
}
output "cluster" {
  value = module.fleet.cluster_name
}
output "cluster_arn" {
  value = module.fleet.cluster_arn
}
output "launch_template_id" {
  value = module.fleet.launch_template_id
}
output "launch_hook" {
  value = module.fleet.launch_hook_name
}
output "terminate_hook" {
  value = module.fleet.terminate_hook_name
}
output "role_arn" {
  value = module.fleet.iam_role_arn
}
output "role_name" {
  value = module.fleet.iam_role_name
}
""" % {"name": NAME, "bucket": REGISTRY_BUCKET, "key": REGISTRY_KEY}

# ecs-boot's baked config on a process instance: its own fake agent's introspection port, short
# waits (the trusted settings come from user data, config.d).
BAKED = """[ecs_agent]
introspection_url = "http://127.0.0.1:{port}"
registration_timeout = "30s"
[tags]
wait = "5s"
[drain]
poll_interval = "200ms"
"""


def baked_config(port: int, overrides: dict | None = None) -> str:
    """BAKED for an agent on `port`, with "section.key" = TOML value overrides."""
    lines, section = [], None
    wanted = dict(overrides or {})
    for line in BAKED.format(port=port).splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line:
            key = f"{section}.{line.split('=', 1)[0].strip()}"
            if key in wanted:
                line = f"{key.split('.', 1)[1]} = {wanted.pop(key)}"
        lines.append(line)
    for key, value in wanted.items():
        sec, name = key.split(".", 1)
        lines += [f"[{sec}]", f"{name} = {value}"]
    return "\n".join(lines) + "\n"


def ecs_boot_binary() -> Path:
    """$ECS_BOOT_BIN, else target/debug/ecs-boot; the test is skipped without one."""
    import pytest

    repo = Path(__file__).resolve().parent.parent.parent
    path = Path(os.environ.get("ECS_BOOT_BIN") or repo / "target/debug/ecs-boot")
    if not path.is_file():
        pytest.skip(f"ecs-boot binary not found at {path}: run `cargo build` or set ECS_BOOT_BIN")
    return path.resolve()


def prepare_moto(client, registry_secret: str) -> None:
    """What exists before `terraform apply`: the AMI parameter (Packer) and the credentials."""
    client("ssm").put_parameter(Name=AMI_PARAMETER, Value=AMI, Type="String", Overwrite=True)
    s3 = client("s3")
    s3.create_bucket(Bucket=REGISTRY_BUCKET)
    s3.put_object(Bucket=REGISTRY_BUCKET, Key=REGISTRY_KEY, Body=registry_secret.encode())


@dataclass
class LaunchView:
    """What EC2 gives one instance, read back from moto."""

    instance_id: str
    template_id: str
    version: int
    image_id: str
    metadata_options: dict
    config_d: dict[str, str]  # path -> content, from the cloud-init write_files of user data
    tags: dict[str, str]


def cloud_config_files(user_data_b64: str) -> dict[str, str]:
    """write_files of the #cloud-config user data (a MIME multipart is not handled: the test
    root passes no extra user data)."""
    text = base64.b64decode(user_data_b64).decode()
    if not text.startswith("#cloud-config"):
        raise AssertionError(f"user data is not #cloud-config: {text[:60]!r}")
    doc = yaml.safe_load(text)
    return {f["path"]: f["content"] for f in doc.get("write_files", [])}


def launch_view(client, instance_id: str) -> LaunchView:
    ec2 = client("ec2")
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
    template_id = tags["aws:ec2launchtemplate:id"]
    version = int(tags["aws:ec2launchtemplate:version"])
    data = ec2.describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=[str(version)],
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    return LaunchView(instance_id, template_id, version, inst["ImageId"],
                      data.get("MetadataOptions", {}), cloud_config_files(data["UserData"]),
                      tags)


@dataclass
class ProcessInstance:
    """ecs-boot run + fake IMDS + fake ECS agent for one moto instance."""

    view: LaunchView
    workdir: Path
    binary: Path
    moto_url: str
    client: object = None  # service -> boto3 client the harness may use (admin under IAM)
    credentials: dict[str, str] = field(default_factory=dict)
    imds: FakeImds | None = None
    agent: FakeAgent | None = None
    proc: object = None
    # What the AMI does differently (a test's bad image): extra fake-agent arguments (e.g.
    # --never-register) and baked config settings, keyed "section.key" (e.g.
    # {"ecs_agent.registration_timeout": '"3s"'}).
    agent_args: list = field(default_factory=list)
    baked_overrides: dict = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def ecs_config(self) -> Path:
        return self.root / "etc/ecs/ecs.config"

    def env(self) -> dict:
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {**base_env(self.moto_url, self.imds.url, home), **self.credentials}

    def boot(self) -> "ProcessInstance":
        v = self.view
        self.imds = FakeImds(moto_url=self.moto_url).start()
        ec2 = self.client("ec2") if self.client else make_client("ec2", self.moto_url)
        self.imds.mirror_instance(ec2, v.instance_id)
        # IMDS serves tags only when the template enables them (moto does not copy metadata
        # options to the instance; EC2 would).
        self.imds.set_tags_enabled(v.metadata_options.get("InstanceMetadataTags") == "enabled")
        self.imds.set_target_lifecycle_state("InService")
        follow_lifecycle(self.imds, v.instance_id)
        port = free_port()
        baked = self.root / "etc/ecs-boot/config.toml"
        baked.parent.mkdir(parents=True, exist_ok=True)
        baked.write_text(baked_config(port, self.baked_overrides))
        for path, content in v.config_d.items():  # cloud-init write_files, under --root
            target = self.root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        link_host(self.root)  # the root's /proc and docker.sock are the host's, as on EC2
        log = self.workdir / "ecs-boot.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(self.binary), "--root", str(self.root), "run", "--container-scope",
                 f"fleet-{os.getpid()}"], env=self.env(), stdout=out, stderr=out)
        self.proc.log_path = log
        wait_for(lambda: self.ecs_config.exists() or self.proc.poll() is not None, timeout=30,
                 what=f"{v.instance_id}: ecs.config written")
        if self.proc.poll() is not None:
            raise AssertionError(f"ecs-boot exited {self.proc.returncode}:\n{self.log()}")
        self.agent = FakeAgent(self.env(), ["--config", str(self.ecs_config), "--stop-delay",
                                            "0.5", *self.agent_args],
                               self.workdir / "agent.log", port)
        return self

    def log(self) -> str:
        try:
            return Path(self.proc.log_path).read_text()[-4000:]
        except (OSError, AttributeError):
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except Exception:  # noqa: BLE001
                self.proc.kill()
        if self.agent:
            self.agent.kill()
        if self.imds:
            self.imds.stop()


class Fleet:
    """Boots a ProcessInstance for every instance the group launches (as EC2 would start it)."""

    def __init__(self, client, moto_url: str, asg: str, workdir: Path, binary: Path,
                 credentials: dict | None = None, quirks=None):
        self.client, self.moto_url, self.asg = client, moto_url, asg
        self.workdir, self.binary = workdir, binary
        self.credentials = credentials or {}
        # LaunchView -> {"agent_args": [...], "baked_overrides": {...}}: how an image behaves.
        self.quirks = quirks or (lambda view: {})
        self.instances: dict[str, ProcessInstance] = {}

    def group_states(self) -> dict[str, str]:
        return {s.instance.id: s.lifecycle_state for s in lifecycle.backend(
            "us-east-1").autoscaling_groups[self.asg].instance_states}

    def sync(self) -> list[str]:
        """Start instances that launched and are not running yet; returns their ids."""
        started = []
        for iid, state in self.group_states().items():
            if iid in self.instances or state in ("Terminated",) or state.startswith("Termin"):
                continue
            view = launch_view(self.client, iid)
            inst = ProcessInstance(view, self.workdir / iid, self.binary, self.moto_url,
                                   self.client, self.credentials, **self.quirks(view))
            self.instances[iid] = inst.boot()
            started.append(iid)
        return started

    def reap(self) -> None:
        """Stop the processes of instances EC2 terminated."""
        for iid, state in self.group_states().items():
            if state == "Terminated" and iid in self.instances:
                self.instances[iid].stop()

    def stop_all(self) -> None:
        for inst in self.instances.values():
            inst.stop()


def completions(hook: str | None = None, instance: str | None = None,
                source: str | None = "api") -> list[dict]:
    return [c for c in lifecycle.completions()
            if hook in (None, c["hook"]) and instance in (None, c["instance"])
            and source in (None, c["source"])]


def forget_terminated(asg: str, region: str = "us-east-1") -> int:
    """Drop Terminated instances from the group, as AWS does after a while (the harness keeps
    them for tests to read). Terraform's group delete waits for an empty instance list."""
    with lifecycle.LOCK:
        group = lifecycle.backend(region).autoscaling_groups.get(asg)
        if group is None:
            return 0
        before = len(group.instance_states)
        group.instance_states = [s for s in group.instance_states
                                 if s.lifecycle_state != "Terminated"]
        return before - len(group.instance_states)


def docker_config_json(registry: str, user: str, password: str) -> str:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"auth": auth}}})
