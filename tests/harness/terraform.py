"""Real Terraform against the harness's moto server: init from the offline mirror, apply, plan,
show -json, destroy, and an inventory of what moto holds afterwards.

    from harness.terraform import TerraformRoot, managed_policies_loaded, inventory

    root = TerraformRoot.copy_of("examples/complete", tmp_path, moto.url)   # or .test_root(...)
    root.init()
    root.apply(vars={"region": "us-east-1"})
    assert root.plan(vars=...).changes == []          # plan -detailed-exitcode, JSON evidence
    root.destroy(vars=...)
    assert inventory(moto) == {}                       # nothing left behind

Why a copy: Terraform writes .terraform/, the lock file and state next to the root module; the
repository tree must stay clean and several tests (and engineers) run at once. The whole
terraform/ directory is copied so the examples' relative module sources (../../) still resolve.

Offline: a CLI config (TF_CLI_CONFIG_FILE) installs providers only from the filesystem mirror
(/opt/tf-plugins, hashicorp/aws 5.100.0) and never from the registry. Loopback only: the provider
is pointed at moto with an `endpoints {}` block for every service it may call, AWS_ENDPOINT_URL
catches any other, and HTTP(S)_PROXY points at a closed loopback port with NO_PROXY=127.0.0.1, so
a call that would leave the machine fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .moto_ext import REGION, make_client

REPO = Path(__file__).resolve().parent.parent.parent
MODULE_TREE = REPO / "terraform"
PLUGIN_MIRROR = Path(os.environ.get("ECS_BOOT_TF_PLUGIN_MIRROR", "/opt/tf-plugins"))

# Services the provider may call for this project's modules; each gets an endpoints {} entry
# (the provider refuses unknown names, so only names it knows). AWS_ENDPOINT_URL covers the rest.
ENDPOINT_SERVICES = (
    "autoscaling", "cloudwatch", "cloudwatchevents", "cloudwatchlogs", "codebuild",
    "codepipeline", "ec2", "ecr", "ecs", "elbv2", "iam", "kms", "lambda", "s3", "secretsmanager",
    "sns", "sqs", "ssm", "sts",
)

CLI_CONFIG = """\
provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["registry.terraform.io/*/*"]
  }}
  direct {{
    exclude = ["registry.terraform.io/*/*"]
  }}
}}
"""

PROVIDER = """\
# Written by tests/harness/terraform.py: the AWS provider pointed at the harness's moto server.
provider "aws" {{
  region                      = "{region}"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""


class TerraformError(AssertionError):
    """A terraform command failed; the message holds its command line and output."""


def terraform_bin() -> str:
    path = shutil.which("terraform")
    if path is None:
        pytest.skip("terraform is not installed (.ci/run installs it)")
    if not any(PLUGIN_MIRROR.glob("registry.terraform.io/hashicorp/aws/*/*")):
        pytest.skip(f"no AWS provider in the offline mirror {PLUGIN_MIRROR}")
    return path


@dataclass
class Plan:
    """Result of `plan -detailed-exitcode`: exit code 0 (no change) or 2 (changes) and the JSON."""

    exit_code: int
    json: dict
    output: str

    @property
    def changes(self) -> list[dict]:
        """resource_changes whose actions are not ["no-op"] (nor ["read"])."""
        return [rc for rc in self.json.get("resource_changes", [])
                if rc["change"]["actions"] not in (["no-op"], ["read"])]

    def actions(self) -> dict[str, list[str]]:
        """address -> actions, for every resource that would change."""
        return {rc["address"]: rc["change"]["actions"] for rc in self.changes}

    def replaced(self) -> list[str]:
        """Addresses that would be destroyed and created again (either order)."""
        return [a for a, acts in self.actions().items() if "delete" in acts and "create" in acts]

    def change(self, address: str) -> dict:
        for rc in self.json.get("resource_changes", []):
            if rc["address"] == address:
                return rc
        raise KeyError(f"{address} not in the plan: {sorted(self.actions())}")

    def planned_values(self) -> dict[str, dict]:
        """address -> planned attribute values, over the root module and every child module."""
        out: dict[str, dict] = {}

        def walk(module):
            for r in module.get("resources", []):
                out[r["address"]] = r.get("values", {})
            for child in module.get("child_modules", []):
                walk(child)

        walk(self.json.get("planned_values", {}).get("root_module", {}))
        return out


@dataclass
class TerraformRoot:
    """One root module in a private copy of terraform/, wired to moto."""

    dir: Path
    moto_url: str
    region: str = REGION
    timeout: int = 600
    log: list[tuple[list[str], int]] = field(default_factory=list)

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def copy_of(cls, root: str, tmp_path: Path, moto_url: str, region: str = REGION,
                module_tree: Path = MODULE_TREE) -> "TerraformRoot":
        """A copy of `module_tree` (default terraform/) under tmp_path; `root` is the root module
        inside it (e.g. "examples/complete"). A provider "aws" block in the root is overridden
        (moto_override.tf); a root without one gets a provider file."""
        tree = tmp_path / "tf"
        if not tree.exists():
            shutil.copytree(module_tree, tree, ignore=shutil.ignore_patterns(
                ".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "*.tfplan"))
        self = cls(tree / root, moto_url, region)
        self._write_provider()
        install_moto_fidelity()
        return self

    @classmethod
    def test_root(cls, name: str, hcl: str, tmp_path: Path, moto_url: str, region: str = REGION,
                  module_tree: Path = MODULE_TREE) -> "TerraformRoot":
        """A root module written by a test, placed at <copy>/test-roots/<name>/ so that it uses the
        module as the README tells users to: source = "../../" (the module) or
        "../../modules/<name>"."""
        tree = tmp_path / "tf"
        if not tree.exists():
            shutil.copytree(module_tree, tree, ignore=shutil.ignore_patterns(
                ".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "*.tfplan"))
        d = tree / "test-roots" / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "main.tf").write_text(hcl)
        self = cls(d, moto_url, region)
        self._write_provider()
        install_moto_fidelity()
        return self

    def _write_provider(self) -> None:
        endpoints = "\n".join(f'    {svc} = "{self.moto_url}"' for svc in ENDPOINT_SERVICES)
        text = PROVIDER.format(region=self.region, endpoints=endpoints)
        has_provider = any('provider "aws"' in f.read_text() for f in self.dir.glob("*.tf")
                           if not f.name.startswith("moto_"))
        (self.dir / ("moto_override.tf" if has_provider else "moto_provider.tf")).write_text(text)

    # --- environment --------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        cli_config = self.dir / ".terraformrc"
        if not cli_config.exists():
            cli_config.write_text(CLI_CONFIG.format(mirror=PLUGIN_MIRROR))
        keep = {k: v for k, v in os.environ.items()
                if k in ("PATH", "HOME", "TMPDIR", "LANG", "TF_LOG", "TF_LOG_PATH")}
        return {
            **keep,
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_PLUGIN_CACHE_DIR": "",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_EC2_METADATA_DISABLED": "true",
            # Anything not sent to moto goes to a closed port and fails, never to the Internet.
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def run(self, *args: str, ok=(0,), timeout: int | None = None) -> subprocess.CompletedProcess:
        cmd = [terraform_bin(), *args]
        try:
            r = subprocess.run(cmd, cwd=self.dir, env=self.env(), capture_output=True, text=True,
                               timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired as e:
            self.log.append((list(args), "timeout"))
            raise TerraformError(f"terraform {' '.join(args)} in {self.dir} still running after "
                                 f"{e.timeout} s\n{_text(e.stdout)[-6000:]}\n{_text(e.stderr)[-3000:]}"
                                 f"\n{self.moto_evidence()}") from None
        self.log.append((list(args), r.returncode))
        if r.returncode not in ok:
            raise TerraformError(f"terraform {' '.join(args)} in {self.dir} exited "
                                 f"{r.returncode}\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}"
                                 f"\n{self.moto_evidence()}")
        return r

    def moto_evidence(self, last: int = 20) -> str:
        """What moto answered: every call it raised on or refused with a 5xx, and the last calls.
        A hung or failed run is otherwise a wall of provider output with no cause."""
        try:
            with urllib.request.urlopen(f"{self.moto_url}/_harness/calls", timeout=10) as resp:
                calls = json.load(resp)["calls"]
        except (OSError, ValueError, KeyError) as err:
            return f"(moto's call log unreadable: {err})"
        line = lambda c: (f"  {c['service']}:{c['action']} -> {c['status']} {c.get('error') or ''}"
                          f" {c.get('exception') or ''}".rstrip())
        bad = [line(c) for c in calls if (c.get("status") or 0) >= 500]
        return "\n".join(["moto 5xx answers:", *(bad or ["  none"]),
                          f"moto's last {last} calls:", *map(line, calls[-last:])])

    def _var_args(self, vars: dict | None) -> list[str]:
        if not vars:
            return []
        f = self.dir / "harness.tfvars.json"
        f.write_text(json.dumps(vars, indent=2))
        return [f"-var-file={f.name}"]

    # --- commands -----------------------------------------------------------------------------

    def init(self) -> subprocess.CompletedProcess:
        return self.run("init", "-input=false", "-no-color", "-backend=false")

    def apply(self, vars: dict | None = None, *extra: str) -> subprocess.CompletedProcess:
        return self.run("apply", "-input=false", "-no-color", "-auto-approve",
                        *self._var_args(vars), *extra)

    def plan(self, vars: dict | None = None, *extra: str, destroy: bool = False,
             refresh: bool = True) -> Plan:
        """`plan -detailed-exitcode -out` then `show -json` of that plan. refresh=False skips
        reading every resource back (much faster) when only the configuration changed."""
        out = "harness.tfplan"
        r = self.run("plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={out}",
                     *(["-destroy"] if destroy else []), *([] if refresh else ["-refresh=false"]),
                     *self._var_args(vars), *extra, ok=(0, 2))
        return Plan(r.returncode, self.show_json(out), r.stdout)

    def plan_error(self, vars: dict | None = None, *extra: str, refresh: bool = False) -> str:
        """A plan expected to fail (a validation or precondition): its output."""
        r = self.run("plan", "-input=false", "-no-color", *([] if refresh else ["-refresh=false"]),
                     *self._var_args(vars), *extra, ok=(1,))
        return r.stdout + r.stderr

    def show_json(self, plan_file: str | None = None) -> dict:
        r = self.run("show", "-json", "-no-color", *([plan_file] if plan_file else []))
        return json.loads(r.stdout)

    def state(self) -> dict:
        """`show -json` of the state: {"values": {"root_module": ...}} (empty after destroy)."""
        return self.show_json()

    def outputs(self) -> dict:
        r = self.run("output", "-json", "-no-color")
        return {k: v["value"] for k, v in json.loads(r.stdout).items()}

    def destroy(self, vars: dict | None = None, *extra: str) -> subprocess.CompletedProcess:
        return self.run("destroy", "-input=false", "-no-color", "-auto-approve",
                        *self._var_args(vars), *extra)


def _text(out: bytes | str | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


# --- moto side --------------------------------------------------------------------------------

_patched = False


def install_moto_fidelity() -> None:
    """Make moto 5.2.1 answer as AWS does where Terraform notices the difference (idempotent; the
    server runs in this process). Without these a second plan always shows changes that real AWS
    would not, and names AWS refuses would apply."""
    global _patched
    if _patched:
        return
    from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, LifecycleHook
    from moto.ec2.models.launch_templates import LaunchTemplateBackend
    from moto.ecs.exceptions import EcsClientException
    from moto.ecs.models import EC2ContainerServiceBackend

    # Lifecycle hooks come back with a made-up SQS target and role ARN.
    hook_init = LifecycleHook.__init__

    def lifecycle_hook_init(self, *args, **kwargs):
        hook_init(self, *args, **kwargs)
        self.role_arn = None
        self.notification_target_arn = None

    LifecycleHook.__init__ = lifecycle_hook_init

    # The launch template's own tags (resource type "launch-template") show up in its data's
    # TagSpecifications, which only ever describe what instances launch with.
    create_lt = LaunchTemplateBackend.create_launch_template

    def create_launch_template(self, name, description, template_data, tag_spec):
        specs = template_data.get("TagSpecifications") or []
        template_data["TagSpecifications"] = [
            t for t in specs if t.get("ResourceType") != "launch-template"]
        if not template_data["TagSpecifications"]:
            del template_data["TagSpecifications"]
        return create_lt(self, name, description, template_data, tag_spec)

    LaunchTemplateBackend.create_launch_template = create_launch_template

    # AWS reports the default capacity reservation preference on every group.
    FakeAutoScalingGroup.capacity_reservation_specification = {
        "CapacityReservationPreference": "default"}

    # CreateCapacityProvider refuses names starting with aws, ecs or fargate (ECS API reference).
    create_cp = EC2ContainerServiceBackend.create_capacity_provider

    def create_capacity_provider(self, name, *args, **kwargs):
        if name.lower().startswith(("aws", "ecs", "fargate")):
            raise EcsClientException(
                "The specified capacity provider name is invalid. Capacity provider names "
                "cannot start with 'aws', 'ecs' or 'fargate'.")
        return create_cp(self, name, *args, **kwargs)

    EC2ContainerServiceBackend.create_capacity_provider = create_capacity_provider

    # DeleteCapacityProvider of one that is gone: AWS answers a ClientException (Terraform's
    # delete treats "capacity provider does not exist" as done); moto 5.2.1 raises AttributeError,
    # a 500 the provider retries for minutes (a suspect for a destroy that hung in CI).
    delete_cp = EC2ContainerServiceBackend.delete_capacity_provider

    def delete_capacity_provider(self, name_or_arn):
        if self._get_provider(name_or_arn) is None:
            raise EcsClientException(
                "The specified capacity provider does not exist. Specify a valid name or ARN "
                "and try again.")
        return delete_cp(self, name_or_arn)

    EC2ContainerServiceBackend.delete_capacity_provider = delete_capacity_provider

    # Auto Scaling keeps reconciling a group with its desired capacity: instances that lose their
    # scale-in protection above it are scaled in (Terraform's group delete relies on that: it sets
    # the capacity to 0, then lifts the protection, then waits for the instances to go).
    set_protection = AutoScalingBackend.set_instance_protection

    def set_instance_protection(self, group_name, instance_ids, protected_from_scale_in):
        set_protection(self, group_name, instance_ids, protected_from_scale_in)
        group = self.autoscaling_groups[group_name]
        if not protected_from_scale_in:
            group.set_desired_capacity(group.desired_capacity)

    AutoScalingBackend.set_instance_protection = set_instance_protection
    _patched = True



@contextmanager
def managed_policies_loaded(moto):
    """moto with the AWS managed policies (AmazonEC2ContainerServiceforEC2Role, ...) loaded: needed
    to attach them, and to diff a module's policies against them. moto reads the switch when it
    builds the IAM backend, i.e. at reset; it is in-process, so setting the variable here works.
    Loading ~1200 documents slows every reset, so it is on only inside this context."""
    old = os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    try:
        moto.reset()
        yield moto
    finally:
        if old is None:
            os.environ.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
        else:
            os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = old
        moto.reset()


def managed_policy_document(moto, name: str, path: str = "/") -> dict:
    """The default version of an AWS managed policy as moto loaded it (managed_policies_loaded)."""
    iam = make_client("iam", moto.url, moto_region(moto))
    arn = f"arn:aws:iam::aws:policy{path}{name}"
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return json.loads(doc) if isinstance(doc, str) else doc


def moto_region(moto) -> str:
    return getattr(moto, "region", REGION)


def _paginate(client, op: str, key: str, **kw) -> list:
    return [x for page in client.get_paginator(op).paginate(**kw) for x in page[key]]


def _ec2(ec2) -> dict[str, list[str]]:
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
    return {
        "ec2:instances": [i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                          for i in r["Instances"]
                          if i["State"]["Name"] not in ("terminated", "shutting-down")],
        "ec2:launch_templates": [t["LaunchTemplateName"]
                                 for t in ec2.describe_launch_templates()["LaunchTemplates"]],
        "ec2:vpcs": vpcs,
        "ec2:subnets": [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]
                        if not s.get("DefaultForAz")],
        "ec2:security_groups": [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]
                                if g["GroupName"] != "default"],
        "ec2:nat_gateways": [n["NatGatewayId"] for n in ec2.describe_nat_gateways()["NatGateways"]
                             if n["State"] not in ("deleted", "deleting")],
        "ec2:addresses": [a.get("AllocationId", a.get("PublicIp"))
                          for a in ec2.describe_addresses()["Addresses"]],
        "ec2:internet_gateways": [g["InternetGatewayId"]
                                  for g in ec2.describe_internet_gateways()["InternetGateways"]
                                  if any(a["VpcId"] in vpcs for a in g.get("Attachments", []))
                                  or not g.get("Attachments")],
        "ec2:flow_logs": [f["FlowLogId"] for f in ec2.describe_flow_logs()["FlowLogs"]],
    }


def _capacity_providers(region: str) -> list[str]:
    # moto 5.2.1's DescribeCapacityProviders fails (500) without names and there is no List call;
    # the server runs in this process, so read its backend.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ecs.models import ecs_backends

    return list(ecs_backends[DEFAULT_ACCOUNT_ID][region].capacity_providers)


def inventory(moto, region: str | None = None) -> dict[str, list[str]]:
    """What moto holds that a Terraform root could have created, by kind; kinds with nothing are
    left out, so `inventory(moto) == {}` means nothing is left behind. moto's own defaults (default
    VPC, its subnets and security groups, AWS managed policies) are not counted."""
    region = region or moto_region(moto)
    c = lambda svc: make_client(svc, moto.url, region)  # noqa: E731
    asg, ecs, iam, logs = c("autoscaling"), c("ecs"), c("iam"), c("logs")
    groups = _paginate(asg, "describe_auto_scaling_groups", "AutoScalingGroups")
    clusters = ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"])["clusters"] \
        if ecs.list_clusters()["clusterArns"] else []
    kms = c("kms")
    # Customer keys still usable. AWS-managed keys (alias/aws/..., e.g. aws/ebs made for the first
    # encrypted volume; moto creates it as a customer key) are not the root's to delete.
    aws_managed = {a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]
                   if a["AliasName"].startswith("alias/aws/")}
    metadata = [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in kms.list_keys()["Keys"]]
    keys = [m["KeyId"] for m in metadata
            if m.get("KeyManager") != "AWS" and m["KeyId"] not in aws_managed
            and m["KeyState"] not in ("PendingDeletion", "PendingReplicaDeletion")]
    found = {
        "autoscaling:groups": [g["AutoScalingGroupName"] for g in groups],
        "autoscaling:lifecycle_hooks": [
            h["LifecycleHookName"] for g in groups
            for h in asg.describe_lifecycle_hooks(
                AutoScalingGroupName=g["AutoScalingGroupName"])["LifecycleHooks"]],
        "autoscaling:warm_pools": [g["AutoScalingGroupName"] for g in groups if g.get("WarmPoolConfiguration")],
        "ecs:clusters": [cl["clusterName"] for cl in clusters if cl["status"] == "ACTIVE"],
        "ecs:capacity_providers": _capacity_providers(region),
        "iam:roles": [r["RoleName"] for r in _paginate(iam, "list_roles", "Roles")
                      if not r["Path"].startswith("/aws-service-role/")],
        "iam:instance_profiles": [p["InstanceProfileName"] for p in
                                  _paginate(iam, "list_instance_profiles", "InstanceProfiles")],
        "iam:policies": [p["PolicyName"] for p in
                         _paginate(iam, "list_policies", "Policies", Scope="Local")],
        "kms:keys": keys,
        "kms:aliases": [a["AliasName"] for a in kms.list_aliases()["Aliases"]
                        if not a["AliasName"].startswith("alias/aws/")],
        "logs:log_groups": [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]],
        "sns:topics": [t["TopicArn"] for t in c("sns").list_topics()["Topics"]],
        "events:rules": [r["Name"] for r in c("events").list_rules()["Rules"]],
        "cloudwatch:alarms": [a["AlarmName"] for a in
                              c("cloudwatch").describe_alarms()["MetricAlarms"]],
        "ssm:parameters": [p["Name"] for p in
                           _paginate(c("ssm"), "describe_parameters", "Parameters")],
        "s3:buckets": [b["Name"] for b in c("s3").list_buckets()["Buckets"]],
        **_ec2(c("ec2")),
    }
    return {kind: sorted(names) for kind, names in found.items() if names}
