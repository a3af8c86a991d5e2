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

import json
import textwrap

import pytest

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
      depends_on = [aws_ecs_cluster_capacity_providers.this]
    }}

    output "service" {{
      value = module.service.pipeline_deploy_target
    }}
    """)
    root = TerraformRoot.test_root("service", hcl, tmp_path, moto_url)
    root.init()
    return root


ROLE = "arn:aws:iam::{account}:role/ecs-boot-deployer"
DEV, PROD = "111111111111", "222222222222"

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
  source_manifest = { bucket = aws_s3_bucket.manifests.id }
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
