"""The service and pipeline modules (issue 24, issue 20 item 2), applied for real: Terraform from the
offline provider mirror against the harness's moto server (tests/harness/terraform.py).

What moto can create is applied and destroyed, and the calls Terraform made are read back from
moto's call log (moto stores a service's capacity provider strategy, circuit breaker and placement
constraints only partly, so the request is the evidence). CodePipeline has no execution in moto:
the stage layout, the approvals and the action configuration are asserted from
`terraform plan -out` + `show -json`. Validations are exercised with `plan`, which must fail with
the validation's message.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

from harness.moto_ext import make_client
from harness.terraform import TerraformRoot, inventory

pytestmark = pytest.mark.e2e

# A cluster with a capacity provider, the way the ecs-boot modules make one (moto does not check
# the group behind the provider).
CLUSTER = """
resource "aws_ecs_cluster" "this" {
  name = "platform"
}

resource "aws_ecs_capacity_provider" "web" {
  name = "web-ondemand"
  auto_scaling_group_provider {
    auto_scaling_group_arn = "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/web"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = [aws_ecs_capacity_provider.web.name]
}
"""

LOAD_BALANCER = """
resource "aws_vpc" "this" {
  cidr_block = "10.20.0.0/16"
}

resource "aws_subnet" "a" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = "10.20.1.0/24"
  availability_zone = "us-east-1a"
}

resource "aws_subnet" "b" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = "10.20.2.0/24"
  availability_zone = "us-east-1b"
}

resource "aws_lb" "this" {
  name               = "platform"
  load_balancer_type = "application"
  internal           = true
  subnets            = [aws_subnet.a.id, aws_subnet.b.id]
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      status_code  = "404"
    }
  }
}
"""


def service_root(tmp_path, moto_url, *, load_balancer: bool = True, extra: str = "") -> TerraformRoot:
    lb = textwrap.dedent("""
      load_balancer = {
        vpc_id               = aws_vpc.this.id
        listener_arn         = aws_lb_listener.http.arn
        priority             = 10
        deregistration_delay = var.deregistration_delay
      }
    """) if load_balancer else ""
    hcl = CLUSTER + (LOAD_BALANCER if load_balancer else "") + textwrap.dedent(f"""
    variable "deployment" {{
      type    = any
      default = {{}}
    }}
    variable "deregistration_delay" {{
      type    = number
      default = 60
    }}
    variable "drain_deadline_seconds" {{
      type    = number
      default = 900
    }}
    variable "desired_count" {{
      type    = number
      default = 2
    }}

    module "service" {{
      source = "../../modules/service"

      name        = "web"
      cluster_arn = aws_ecs_cluster.this.arn
      capacity_provider_strategy = [
        {{ capacity_provider = aws_ecs_capacity_provider.web.name, weight = 1, base = 1 }},
      ]
      container = {{
        image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:{'a' * 64}"
        port  = 8080
      }}
      desired_count          = var.desired_count
      deployment             = var.deployment
      drain_deadline_seconds = var.drain_deadline_seconds
      ecr_repository_arns    = ["arn:aws:ecr:us-east-1:123456789012:repository/web"]
      {lb}
      {extra}

    }}

    output "service" {{
      value = module.service.pipeline_deploy_target
    }}
    """)
    root = TerraformRoot.test_root("service", hcl, tmp_path, moto_url)
    root.init()
    return root


IMAGE_PIPELINE = """
module "pipeline" {
  source    = "../../modules/pipeline"
  providers = { aws = aws, aws.notifications = aws }

  name         = "web-image"
  source_image = { repository_name = "web" }
  deploy       = { kind = "ecs", container_name = "app" }
  environments = [
    { name = "dev", role_arn = "arn:aws:iam::111111111111:role/ecs-boot-deployer",
      ecs = { cluster_name = "platform", service_name = "web" } },
    { name = "staging", role_arn = "arn:aws:iam::222222222222:role/ecs-boot-deployer",
      ecs = { cluster_name = "platform", service_name = "web" } },
    { name = "prod", role_arn = "arn:aws:iam::333333333333:role/ecs-boot-deployer",
      ecs = { cluster_name = "platform", service_name = "web" } },
  ]
  execution_mode = var.execution_mode
}

variable "execution_mode" {
  type    = string
  default = "QUEUED"
}

output "pipeline" {
  value = module.pipeline
}
"""

AMI_PIPELINE = """
resource "aws_s3_bucket" "manifests" {
  bucket        = "ecs-boot-ami-manifests"
  force_destroy = true
}

resource "aws_sns_topic" "ami_update" {
  name = "ecs-optimized-amazon-ami-update"
}

module "pipeline" {
  source    = "../../modules/pipeline"
  providers = { aws = aws, aws.notifications = aws }

  name            = "ecs-boot-ami"
  # A name, not the resource's id: the pipeline's layout is then known at plan time.
  source_manifest = { bucket = "ecs-boot-ami-manifests" }
  deploy = {
    kind    = "rollout"
    rollout = { image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecs-boot-fleet:1.4.0",
                image_repository_arn = "arn:aws:ecr:us-east-1:123456789012:repository/ecs-boot-fleet" }
  }
  environments = [
    { name = "dev", role_arn = "arn:aws:iam::111111111111:role/ecs-boot-rollout" },
    { name = "prod", role_arn = "arn:aws:iam::222222222222:role/ecs-boot-rollout" },
  ]
  ami_update_trigger = {
    topic_arn     = aws_sns_topic.ami_update.arn
    packer_source = "ecs-boot-ami-manifests/packer/ecs-boot-src.zip"
  }
}

output "pipeline" {
  value = module.pipeline
}
"""


ENV_ROLES = {
    "dev": "arn:aws:iam::111111111111:role/ecs-boot-deployer",
    "staging": "arn:aws:iam::222222222222:role/ecs-boot-deployer",
    "prod": "arn:aws:iam::333333333333:role/ecs-boot-deployer",
}
DIGEST = "sha256:" + "b" * 64
REPO_URL = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def calls(moto, service: str, action: str) -> list[dict]:
    return [c["params"] for c in moto.calls(service=service, action=action)]


def pipeline_values(plan, module: str = "pipeline") -> dict:
    return plan.planned_values()[f"module.{module}.aws_codepipeline.this"]


def stage_layout(pipeline: dict) -> list[tuple[str, list[tuple[str, str, int]]]]:
    """[(stage, [(action, category, run_order), ...]), ...] from planned values."""
    return [(st["name"], [(a["name"], a["category"], a.get("run_order")) for a in st["action"]])
            for st in pipeline["stage"]]


def buildspec(plan, project: str) -> dict:
    values = plan.planned_values()[f'module.pipeline.aws_codebuild_project.this["{project}"]']
    return yaml.safe_load(values["source"][0]["buildspec"])


def run_buildspec(spec: dict, workdir: Path, env: dict, phases=("install", "build")) -> subprocess.CompletedProcess:
    """Run a buildspec's commands the way CodeBuild does (one bash session per build, commands in
    order), then print the exported variables. Fakes for aws/ecs-boot-fleet come first on PATH."""
    commands = [c for ph in phases for c in (spec.get("phases", {}).get(ph) or {}).get("commands", [])]
    exported = spec.get("env", {}).get("exported-variables", [])
    script = "\n".join(commands + [f'echo "EXPORT {v}=${{{v}-}}"' for v in exported])
    return subprocess.run(["bash", "-c", script], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=60)


def exported(r: subprocess.CompletedProcess) -> dict:
    return dict(line[len("EXPORT "):].split("=", 1) for line in r.stdout.splitlines()
                if line.startswith("EXPORT "))


def fake_tool(bindir: Path, name: str, body: str) -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    f = bindir / name
    f.write_text("#!/usr/bin/env bash\n" + body)
    f.chmod(f.stat().st_mode | stat.S_IEXEC)
    return f


def tool_env(bindir: Path, **extra) -> dict:
    return {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(bindir.parent), "AWS_REGION": "us-east-1",
            **extra}


# --------------------------------------------------------------------------------------------
# service module
# --------------------------------------------------------------------------------------------


def test_service_applies_on_the_capacity_provider_and_destroys(moto, tmp_path):
    root = service_root(tmp_path, moto.url)
    root.apply()
    target = root.outputs()["service"]
    assert target["cluster_name"] == "platform" and target["service_name"] == "web"
    assert target["container_name"] == "app" and len(target["pass_role_arns"]) == 2

    (svc,) = calls(moto, "ecs", "CreateService")
    assert svc["capacityProviderStrategy"] == [{"base": 1, "capacityProvider": "web-ondemand", "weight": 1}]
    assert "launchType" not in svc, "a launch type would bypass the capacity provider"
    dc = svc["deploymentConfiguration"]
    assert (dc["minimumHealthyPercent"], dc["maximumPercent"]) == (100, 200)
    assert dc["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert {"type": "memberOf", "expression": "attribute:ecs-boot.ready == true"} in svc["placementConstraints"]
    (lb,) = svc["loadBalancers"]
    assert (lb["containerName"], lb["containerPort"]) == ("app", 8080)

    (td,) = calls(moto, "ecs", "RegisterTaskDefinition")
    (container,) = td["containerDefinitions"]
    assert container["image"].endswith("@sha256:" + "a" * 64)
    assert container["portMappings"] == [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}]
    assert container["readonlyRootFilesystem"] is True and container["privileged"] is False
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/web"
    assert td["requiresCompatibilities"] == ["EC2"] and td["networkMode"] == "bridge"

    # The target group deregisters well within ecs-boot's drain deadline.
    attrs = {a["Key"]: a["Value"] for c in moto.calls(service="elasticloadbalancing",
                                                      action="ModifyTargetGroupAttributes")
             for a in _elb_attributes(c["params"])}
    assert attrs.get("deregistration_delay.timeout_seconds") == "60", attrs

    # Least privilege: the execution role pulls from the one repository and writes the one log
    # group; the task role has no policy at all.
    iam = make_client("iam", moto.url)
    roles = {r["RoleName"]: r for r in iam.list_roles()["Roles"]}
    exec_role = next(n for n in roles if n.startswith("web-exec-"))
    task_role = next(n for n in roles if n.startswith("web-task-"))
    doc = iam.get_role_policy(RoleName=exec_role, PolicyName="execution")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert _as_list(by_sid["PullFromTheseRepositories"]["Resource"]) == [
        "arn:aws:ecr:us-east-1:123456789012:repository/web"]
    assert _as_list(by_sid["WriteThisLogGroup"]["Resource"]) == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web:log-stream:*"]
    stars = [sid for sid, st in by_sid.items() if "*" in _as_list(st["Resource"])]
    assert stars == ["EcrToken"], f"Resource '*' beyond ecr:GetAuthorizationToken: {stars}"
    assert iam.list_role_policies(RoleName=task_role)["PolicyNames"] == []
    assert iam.list_attached_role_policies(RoleName=task_role)["AttachedPolicies"] == []

    root.destroy()
    ecs = make_client("ecs", moto.url)
    active = [s["serviceName"] for c in ecs.list_clusters()["clusterArns"]
              for s in ecs.describe_services(cluster=c, services=["web"])["services"]
              if s["status"] == "ACTIVE"]
    assert active == []
    assert make_client("elbv2", moto.url).describe_target_groups()["TargetGroups"] == []
    assert inventory(moto) == {}


def _elb_attributes(params: dict) -> list[dict]:
    """ModifyTargetGroupAttributes is a query call: Attributes.member.N.Key/Value."""
    out = {}
    for k, v in params.items():
        if k.startswith("Attributes.member."):
            n, field = k.split(".")[2:4]
            out.setdefault(n, {})[field] = v[0] if isinstance(v, list) else v
    return list(out.values())


def _as_list(v):
    return v if isinstance(v, list) else [v]


@pytest.fixture(scope="module")
def service_plan_root(moto_server, tmp_path_factory):
    return service_root(tmp_path_factory.mktemp("svc-plan"), moto_server.url)


REFUSED = {
    "min 100 with max 100": ({"deployment": {"minimum_healthy_percent": 100, "maximum_percent": 100}},
                             "lets no task move"),
    "one task, min 50, max 100": ({"desired_count": 1,
                                   "deployment": {"minimum_healthy_percent": 50, "maximum_percent": 100}},
                                  "ECS rounds minimum_healthy_percent up"),
    "deregistration as long as the drain": ({"deregistration_delay": 900, "drain_deadline_seconds": 900},
                                            "must be shorter than drain_deadline_seconds"),
    "deregistration longer than the drain": ({"deregistration_delay": 300, "drain_deadline_seconds": 120},
                                             "must be shorter than drain_deadline_seconds"),
    "rollback without circuit breaker": ({"deployment": {"circuit_breaker": False, "rollback": True}},
                                         "rollback needs circuit_breaker"),
}

ACCEPTED = {
    "defaults": {},
    "min 100 with max 150": {"deployment": {"minimum_healthy_percent": 100, "maximum_percent": 150}},
    "min 50 with max 100, four tasks": {"desired_count": 4,
                                        "deployment": {"minimum_healthy_percent": 50, "maximum_percent": 100}},
    "deregistration just under the drain": {"deregistration_delay": 119, "drain_deadline_seconds": 120},
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_service_validations_refuse(service_plan_root, case):
    variables, message = REFUSED[case]
    out = service_plan_root.plan_error(variables)
    assert "Invalid value for variable" in out, out[-3000:]
    assert message in " ".join(out.split()), out[-3000:]


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_service_validations_accept(service_plan_root, case):
    plan = service_plan_root.plan(ACCEPTED[case])
    assert "module.service.aws_ecs_service.this" in plan.actions()


def test_service_without_ready_attribute_or_load_balancer(moto_server, tmp_path):
    root = service_root(tmp_path, moto_server.url, load_balancer=False,
                        extra="require_ready_attribute = false")
    values = root.plan().planned_values()
    svc = values["module.service.aws_ecs_service.this"]
    assert svc["placement_constraints"] == []
    assert svc["load_balancer"] == []
    assert not any(a.startswith("module.service.aws_lb_") for a in values)


# --------------------------------------------------------------------------------------------
# pipeline module: the layout, from the plan
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image_plan(moto_server, tmp_path_factory):
    root = TerraformRoot.test_root("image-pipeline", IMAGE_PIPELINE, tmp_path_factory.mktemp("img"),
                                   moto_server.url)
    root.init()
    return root, root.plan()


@pytest.fixture(scope="module")
def ami_plan(moto_server, tmp_path_factory):
    root = TerraformRoot.test_root("ami-pipeline", AMI_PIPELINE, tmp_path_factory.mktemp("ami"),
                                   moto_server.url)
    root.init()
    return root, root.plan()


def test_image_pipeline_stages_and_approvals(image_plan):
    _, plan = image_plan
    p = pipeline_values(plan)
    assert p["pipeline_type"] == "V2" and p["execution_mode"] == "QUEUED"
    assert stage_layout(p) == [
        ("Source", [("Source", "Source", 1)]),
        ("Release", [("Describe", "Build", 1)]),
        ("dev", [("Deploy", "Deploy", 2)]),
        ("staging", [("Approve", "Approval", 1), ("Deploy", "Deploy", 2)]),
        ("prod", [("Approve", "Approval", 1), ("Deploy", "Deploy", 2)]),
    ]
    source = p["stage"][0]["action"][0]
    assert source["provider"] == "S3" and source["configuration"]["PollForSourceChanges"] == "false"
    for stage in p["stage"][2:]:
        deploy = stage["action"][-1]
        assert deploy["provider"] == "ECS" and deploy["input_artifacts"] == ["release"]
        assert deploy["role_arn"] == ENV_ROLES[stage["name"]], "each stage acts as its environment's role"
        assert deploy["configuration"]["FileName"] == "imagedefinitions.json"
        assert deploy["configuration"]["ServiceName"] == "web"
    for stage in p["stage"][3:]:
        message = stage["action"][0]["configuration"]["CustomData"]
        assert "#{Release.RELEASE_LABEL}" in message and stage["name"] in message
    store = p["artifact_store"][0]
    assert store["encryption_key"][0]["type"] == "KMS"


def test_ami_pipeline_stages_and_approvals(ami_plan):
    _, plan = ami_plan
    p = pipeline_values(plan)
    assert stage_layout(p) == [
        ("Source", [("Source", "Source", 1)]),
        ("Release", [("Describe", "Build", 1)]),
        ("dev", [("Rollout", "Build", 2)]),
        ("prod", [("Approve", "Approval", 1), ("Rollout", "Build", 2)]),
    ]
    assert p["stage"][0]["action"][0]["configuration"]["S3ObjectKey"] == "ami/manifest.zip"
    for stage in p["stage"][2:]:
        rollout = stage["action"][-1]
        assert rollout["configuration"]["ProjectName"] == "ecs-boot-ami-deploy"
        env = {v["name"]: v["value"] for v in json.loads(rollout["configuration"]["EnvironmentVariables"])}
        assert env["ENVIRONMENT"] == stage["name"]
        assert env["TARGET_ROLE_ARN"] == f"arn:aws:iam::{'111111111111' if stage['name'] == 'dev' else '222222222222'}:role/ecs-boot-rollout"
        assert not rollout.get("role_arn"), "a CodeBuild action runs in the pipeline account"


def test_image_pipeline_refuses_parallel_executions(image_plan):
    root, _ = image_plan
    out = root.plan_error({"execution_mode": "PARALLEL"})
    assert "PARALLEL would run two deployments" in " ".join(out.split()), out[-2000:]


def test_image_pipeline_triggers_on_release_tags_only(image_plan):
    _, plan = image_plan
    values = plan.planned_values()
    rule = values["module.pipeline.aws_cloudwatch_event_rule.release_pushed[0]"]
    pattern = json.loads(rule["event_pattern"])
    assert pattern["detail"]["image-tag"] == [{"prefix": "release-"}]
    assert pattern["detail"]["action-type"] == ["PUSH"] and pattern["detail"]["result"] == ["SUCCESS"]
    target = values["module.pipeline.aws_cloudwatch_event_target.release_pushed[0]"]
    template = target["input_transformer"][0]["input_template"]
    assert {"IMAGE_TAG", "IMAGE_DIGEST"} <= {v["name"] for v in
                                             json.loads(template.replace("<tag>", '"t"').replace("<digest>", '"d"'))["environmentVariablesOverride"]}
    repo = values["module.pipeline.aws_ecr_repository.release[0]"]
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert repo["image_scanning_configuration"] == [{"scan_on_push": True}]
    lifecycle = json.loads(values["module.pipeline.aws_ecr_lifecycle_policy.release[0]"]["policy"])
    assert [r["selection"]["tagStatus"] for r in lifecycle["rules"]] == ["untagged", "tagged"]


@pytest.mark.parametrize("case,hcl_change,message", [
    ("ecs deploy from a manifest", ('source_image = { repository_name = "web" }',
                                    'source_manifest = { bucket = "b-manifests" }'), "deploy.kind \"ecs\" needs"),
    ("duplicate environment", ('{ name = "staging"', '{ name = "dev"'), "names must be unique"),
    ("wildcard role", ("222222222222:role/ecs-boot-deployer", "222222222222:role/*"), "no wildcards"),
])
def test_pipeline_validations(moto_server, tmp_path, case, hcl_change, message):
    old, new = hcl_change
    assert old in IMAGE_PIPELINE
    root = TerraformRoot.test_root("bad", IMAGE_PIPELINE.replace(old, new, 1), tmp_path, moto_server.url)
    root.init()
    out = root.plan_error()
    assert message in " ".join(out.split()), out[-3000:]


# --------------------------------------------------------------------------------------------
# pipeline module: the buildspecs, run (fakes for aws and ecs-boot-fleet)
# --------------------------------------------------------------------------------------------


def image_detail(**over) -> dict:
    return {"RegistryId": "123456789012", "RepositoryName": "web", "ImageDigest": DIGEST,
            "ImageTags": ["release-1.4.0"], "ImageURI": f"{REPO_URL}@{DIGEST}", **over}


def test_release_stage_converts_image_detail_to_imagedefinitions_by_digest(image_plan, tmp_path):
    spec = buildspec(image_plan[1], "release")
    assert set(spec["artifacts"]["files"]) == {"imagedefinitions.json", "imageDetail.json"}
    (tmp_path / "imageDetail.json").write_text(json.dumps(image_detail()))
    r = run_buildspec(spec, tmp_path, tool_env(tmp_path / "bin"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "imagedefinitions.json").read_text()) == [
        {"name": "app", "imageUri": f"{REPO_URL}@{DIGEST}"}]
    variables = exported(r)
    assert variables["RELEASE_ID"] == DIGEST
    assert variables["RELEASE_LABEL"] == f"image web:release-1.4.0 ({DIGEST})"


@pytest.mark.parametrize("case,detail", [
    ("by tag, not digest", image_detail(ImageURI=f"{REPO_URL}:release-1.4.0")),
    ("digest of another image", image_detail(ImageURI=f"{REPO_URL}@sha256:{'c' * 64}")),
    ("another repository", image_detail(ImageURI=f"123456789012.dkr.ecr.us-east-1.amazonaws.com/other@{DIGEST}")),
    ("not a release tag", image_detail(ImageTags=["latest"])),
])
def test_release_stage_refuses_a_bad_image_detail(image_plan, tmp_path, case, detail):
    (tmp_path / "imageDetail.json").write_text(json.dumps(detail))
    r = run_buildspec(buildspec(image_plan[1], "release"), tmp_path, tool_env(tmp_path / "bin"))
    assert r.returncode != 0, f"{case}: accepted"
    assert not (tmp_path / "imagedefinitions.json").exists()


def test_release_stage_names_the_ami_from_packers_manifest(ami_plan, tmp_path):
    spec = buildspec(ami_plan[1], "release")
    manifest = {"builds": [
        {"artifact_id": "us-east-1:ami-0aaaaaaaaaaaaaaaa"},
        {"artifact_id": "eu-west-1:ami-0bbbbbbbbbbbbbbbb,us-east-1:ami-0123456789abcdef0"},
    ], "last_run_uuid": "x"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    r = run_buildspec(spec, tmp_path, tool_env(tmp_path / "bin"))
    assert r.returncode == 0, r.stderr
    assert exported(r) == {"RELEASE_ID": "ami-0123456789abcdef0", "RELEASE_LABEL": "AMI ami-0123456789abcdef0"}

    (tmp_path / "manifest.json").write_text(json.dumps({"builds": [{"artifact_id": "eu-west-1:ami-0bbbbbbbbbbbbbbbb"}]}))
    r = run_buildspec(spec, tmp_path, tool_env(tmp_path / "bin"))
    assert r.returncode != 0 and "names no AMI for us-east-1" in r.stderr


@pytest.mark.parametrize("fleet_exit", [0, 3])
def test_rollout_stage_runs_ecs_boot_fleet_as_the_environment_role(ami_plan, tmp_path, fleet_exit):
    spec = buildspec(ami_plan[1], "deploy")
    src = tmp_path / "src"
    src.mkdir()
    (src / "manifest.json").write_text("{}")
    bindir = tmp_path / "bin"
    log = tmp_path / "calls.log"
    fake_tool(bindir, "aws", f'echo "aws $*" >> {log}\n')
    fake_tool(bindir, "ecs-boot-fleet",
              f'echo "fleet AWS_PROFILE=$AWS_PROFILE $*" >> {log}\necho \'{{"promoted": true}}\'\nexit {fleet_exit}\n')
    r = run_buildspec(spec, src, tool_env(bindir, ENVIRONMENT="prod", CODEBUILD_SRC_DIR=str(src),
                                          TARGET_ROLE_ARN="arn:aws:iam::222222222222:role/ecs-boot-rollout",
                                          TARGET_REGION="eu-west-1"))
    lines = log.read_text().splitlines()
    assert "aws configure set profile.environment.role_arn arn:aws:iam::222222222222:role/ecs-boot-rollout" in lines
    assert "aws configure set profile.environment.credential_source EcsContainer" in lines
    assert lines[-1] == f"fleet AWS_PROFILE=environment rollout --environment prod --ami-from-manifest {src}/manifest.json"
    assert (r.returncode == 0) == (fleet_exit == 0), "exit 0 means promoted; anything else fails the stage"
    if fleet_exit == 0:
        assert json.loads((src / "rollout-report.json").read_text()) == {"promoted": True}


def test_packer_build_publishes_the_manifest_as_the_next_source(ami_plan, tmp_path):
    spec = buildspec(ami_plan[1], "packer")
    bindir = tmp_path / "bin"
    log = tmp_path / "calls.log"
    fake_tool(bindir, "packer", f'echo "packer $*" >> {log}\n')
    fake_tool(bindir, "aws", f'echo "aws $*" >> {log}\n')
    work = tmp_path / "src"
    fake_tool(work / "packer", "build-ami.sh",
              f'echo "build-ami $*" >> {log}\necho \'{{"builds": []}}\' > packer/manifest.json\n')
    r = run_buildspec(spec, work, tool_env(bindir, CODEBUILD_SRC_DIR=str(work)))
    assert r.returncode == 0, r.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == "packer init packer"
    assert lines[1] == f"build-ami -var rpm_file={work}/dist/ecs-boot.rpm"
    assert lines[-1] == "aws s3 cp manifest.zip s3://ecs-boot-ami-manifests/ami/manifest.zip"
    with zipfile.ZipFile(work / "manifest.zip") as z:
        assert json.loads(z.read("manifest.json")) == {"builds": []}


@pytest.mark.parametrize("case,tag,digest,ecr_says,uploaded", [
    ("the pushed release", "release-1.4.0", DIGEST, DIGEST, True),
    ("ECR disagrees", "release-1.4.0", DIGEST, "sha256:" + "c" * 64, False),
    ("not a release tag", "latest", DIGEST, DIGEST, False),
    ("malformed digest", "release-1.4.0", "sha256:xyz", "sha256:xyz", False),
    ("injection in the tag", 'release-1"; rm -rf /; "', DIGEST, DIGEST, False),
])
def test_record_build_writes_the_release_by_digest(image_plan, tmp_path, case, tag, digest, ecr_says, uploaded):
    spec = buildspec(image_plan[1], "record")
    bindir = tmp_path / "bin"
    out = tmp_path / "s3"
    out.mkdir()
    fake_tool(bindir, "aws", textwrap.dedent(f"""\
        case "$1 $2" in
          "ecr describe-images") echo "{ecr_says}" ;;
          "s3 cp") cp "$3" {out}/uploaded.zip; echo "$4 $*" > {out}/args ;;
          *) exit 9 ;;
        esac
        """))
    work = tmp_path / "work"
    work.mkdir()
    r = run_buildspec(spec, work, tool_env(bindir, IMAGE_TAG=tag, IMAGE_DIGEST=digest))
    assert (r.returncode == 0) == uploaded, f"{case}: {r.stderr}"
    assert (out / "uploaded.zip").exists() == uploaded
    if uploaded:
        with zipfile.ZipFile(out / "uploaded.zip") as z:
            detail = json.loads(z.read("imageDetail.json"))
        assert detail["ImageURI"] == f"{REPO_URL}@{DIGEST}" and detail["ImageTags"] == [tag]
        args = (out / "args").read_text()
        assert args.split()[0] == "s3://web-image-123456789012-us-east-1/releases/web-image/release.zip"


# --------------------------------------------------------------------------------------------
# pipeline module: applied against moto, and destroyed
# --------------------------------------------------------------------------------------------


def _pipeline_inventory(moto) -> dict:
    c = lambda svc: make_client(svc, moto.url)  # noqa: E731
    return {k: v for k, v in {
        "codepipeline": [p["name"] for p in c("codepipeline").list_pipelines()["pipelines"]],
        "codebuild": c("codebuild").list_projects()["projects"],
        "ecr": [r["repositoryName"] for r in c("ecr").describe_repositories()["repositories"]],
        "sqs": c("sqs").list_queues().get("QueueUrls", []),
        "pipes": [p["Name"] for p in c("pipes").list_pipes()["Pipes"]],
        "sns_subscriptions": [s["Endpoint"] for s in c("sns").list_subscriptions()["Subscriptions"]],
        **inventory(moto),
    }.items() if v}


def test_image_pipeline_applies_and_destroys(moto, tmp_path):
    root = TerraformRoot.test_root("image-pipeline", IMAGE_PIPELINE, tmp_path, moto.url)
    root.init()
    root.apply()

    (created,) = calls(moto, "codepipeline", "CreatePipeline")
    pipeline = created["pipeline"]
    assert pipeline["executionMode"] == "QUEUED" and pipeline["pipelineType"] == "V2"
    assert [s["name"] for s in pipeline["stages"]] == ["Source", "Release", "dev", "staging", "prod"]
    approvals = [s["name"] for s in pipeline["stages"]
                 if any(a["actionTypeId"]["category"] == "Approval" for a in s["actions"])]
    assert approvals == ["staging", "prod"]

    (repo,) = calls(moto, "ecr", "CreateRepository")
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfiguration"]["encryptionType"] == "KMS"
    assert calls(moto, "ecr", "PutLifecyclePolicy")

    # Least privilege: the pipeline role may act as exactly the environment roles and start
    # exactly its own builds.
    iam = make_client("iam", moto.url)
    role = next(r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("web-image-pipe-"))
    doc = iam.get_role_policy(RoleName=role, PolicyName="pipeline")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert sorted(_as_list(by_sid["ActAsTheEnvironmentRoles"]["Resource"])) == sorted(ENV_ROLES.values())
    assert sorted(_as_list(by_sid["RunTheBuildsOfThisPipeline"]["Resource"])) == [
        "arn:aws:codebuild:us-east-1:123456789012:project/web-image-release"]
    assert not [sid for sid, st in by_sid.items() if "*" in _as_list(st["Resource"])]

    held = _pipeline_inventory(moto)
    assert held["codepipeline"] == ["web-image"] and held["ecr"] == ["web"]
    assert sorted(held["codebuild"]) == ["web-image-record", "web-image-release"]

    root.destroy()
    assert _pipeline_inventory(moto) == {}


def test_ami_pipeline_applies_and_destroys(moto, tmp_path):
    root = TerraformRoot.test_root("ami-pipeline", AMI_PIPELINE, tmp_path, moto.url)
    root.init()
    root.apply()

    (created,) = calls(moto, "codepipeline", "CreatePipeline")
    assert [s["name"] for s in created["pipeline"]["stages"]] == ["Source", "Release", "dev", "prod"]
    held = _pipeline_inventory(moto)
    assert sorted(held["codebuild"]) == ["ecs-boot-ami-deploy", "ecs-boot-ami-packer", "ecs-boot-ami-release"]
    assert held["pipes"] == ["ecs-boot-ami-ami-update"]
    assert held["sns_subscriptions"] == [f"arn:aws:sqs:us-east-1:123456789012:ecs-boot-ami-ami-update"]

    # The rollout build may assume exactly the environment roles.
    iam = make_client("iam", moto.url)
    role = next(r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("ecs-boot-ami-deploy-"))
    doc = iam.get_role_policy(RoleName=role, PolicyName="deploy")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert sorted(_as_list(by_sid["ActAsTheEnvironmentRoles"]["Resource"])) == [
        "arn:aws:iam::111111111111:role/ecs-boot-rollout", "arn:aws:iam::222222222222:role/ecs-boot-rollout"]

    root.destroy()
    assert _pipeline_inventory(moto) == {}


# --------------------------------------------------------------------------------------------
# examples/platform: cluster + two groups + one service + its image pipeline
# --------------------------------------------------------------------------------------------

PLATFORM_VARS = {"region": "us-east-1",
                 "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0000"}


def test_platform_example_plans(moto, tmp_path):
    ssm = make_client("ssm", moto.url)
    ssm.put_parameter(Name="/ecs-boot/ami/x86_64", Value="ami-0123456789abcdef0", Type="String")
    root = TerraformRoot.copy_of("examples/platform", tmp_path, moto.url)
    root.init()
    plan = root.plan(PLATFORM_VARS)
    values = plan.planned_values()

    groups = {v["name"]: v for a, v in values.items() if a.endswith("aws_autoscaling_group.this")}
    assert sorted(groups) == ["platform-od", "platform-spot"]
    assert groups["platform-spot"].get("mixed_instances_policy")
    assert not groups["platform-od"].get("mixed_instances_policy")
    association = values["module.cluster.aws_ecs_cluster_capacity_providers.this"]
    assert sorted(association["capacity_providers"]) == ["platform-od", "platform-spot"]

    svc = values["module.web.aws_ecs_service.this"]
    assert {s["capacity_provider"]: (s["base"], s["weight"]) for s in svc["capacity_provider_strategy"]} == {
        "platform-od": (1, 1), "platform-spot": (0, 3)}
    assert svc["deployment_circuit_breaker"] == [{"enable": True, "rollback": True}]
    tg = values["module.web.aws_lb_target_group.this[0]"]
    assert tg["deregistration_delay"] == "60"

    p = pipeline_values(plan, "web_images")
    assert [s["name"] for s in p["stage"]] == ["Source", "Release", "dev"]
    assert p["stage"][2]["action"][0]["role_arn"] == "arn:aws:iam::123456789012:role/platform-web-deploy"

    # With a production environment the pipeline gains a stage behind an approval.
    prod = {"role_arn": "arn:aws:iam::222222222222:role/platform-web-deploy",
            "cluster_name": "platform", "service_name": "web"}
    p = pipeline_values(root.plan({**PLATFORM_VARS, "prod": prod}, refresh=False), "web_images")
    assert stage_layout(p)[3] == ("prod", [("Approve", "Approval", 1), ("Deploy", "Deploy", 2)])
