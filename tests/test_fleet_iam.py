"""The module's instance role, enforced by moto: a whole boot and drain succeeds with credentials
from sts:AssumeRole on the role the module made, and what the role must not do is denied.

moto enforces IAM after INITIAL_NO_AUTH_ACTION_COUNT calls (POST /moto-api/reset-auth, here 0:
every call from then on); harness/iam_ext.py gives the Auto Scaling, ECS and SSM calls the
resource ARNs AWS evaluates (S3 has its own). moto treats every condition as met, so the
statements that rely on one (ecs:cluster, kms:ViaService, ecs:CreateAction) are asserted from the
plan instead; see README "from terraform apply to a drained instance".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import iam_ext, lifecycle  # noqa: E402
from harness.procs import wait_for  # noqa: E402
from harness.terraform import TerraformRoot  # noqa: E402
from harness.tf_fleet import (  # noqa: E402
    REGISTRY_BUCKET, REGISTRY_KEY, ROOT_HCL, Fleet, completions, docker_config_json,
    ecs_boot_binary, prepare_moto)

pytestmark = pytest.mark.e2e

SETTINGS = {"ECS_IMAGE_PULL_BEHAVIOR": "prefer-cached"}
OTHER_ASG, OTHER_CLUSTER = "other-asg", "other-cluster"
ALLOWED_PARAMETER = "/fleet/registry/token"  # under the module's registry_auth_locations
DENIED_OBJECT = "other/secret.json"


class Iam:
    """The applied module, the other group/cluster/secrets it must not touch, credentials."""

    def __init__(self, moto, tmp):
        self.moto = moto
        hcl = ROOT_HCL.replace('agent_settings            = var.agent_settings',
                               'agent_settings            = var.agent_settings\n'
                               '  registry_auth_locations   = ["ssm:/fleet/registry/"]')
        self.tf = TerraformRoot.test_root("fleet-iam", hcl, tmp, moto.url)
        self.admin: dict = {}
        self.role: dict = {}
        self.out: dict = {}
        self.other_instance = ""
        self.other_container_instance = ""

    def as_admin(self, service):
        return make_client_with(service, self.moto.url, self.admin)

    def as_role(self, service):
        return make_client_with(service, self.moto.url, self.role, user_agent="ecs-boot-role")


def make_client_with(service, url, creds, user_agent="ecs-boot-harness"):
    """A client with the given credentials; the harness user agent keeps its calls out of the
    `client` source of the call log, the role's own calls stay in it."""
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=creds.get("AWS_SESSION_TOKEN"),
                        config=Config(user_agent_extra=user_agent,
                                      retries={"max_attempts": 1, "mode": "standard"},
                                      s3={"addressing_style": "path"}))


def other_world(c, iam_obj: Iam) -> None:
    """Things of another tenant in the same account, created before IAM is enforced."""
    ssm = c("ssm")
    ssm.put_parameter(Name=ALLOWED_PARAMETER, Value="fleet-token", Type="SecureString")
    ssm.put_parameter(Name="/other/plain", Value="not yours", Type="String")
    ssm.put_parameter(Name="/other/secret", Value="not yours either", Type="SecureString")
    c("s3").put_object(Bucket=REGISTRY_BUCKET, Key=DENIED_OBJECT, Body=b"{}")
    ecs = c("ecs")
    ecs.create_cluster(clusterName=OTHER_CLUSTER)
    ec2 = c("ec2")
    lt = ec2.create_launch_template(LaunchTemplateName="other-lt", LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})["LaunchTemplate"]
    c("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=OTHER_ASG, MinSize=0, MaxSize=1, DesiredCapacity=1,
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "1"},
        AvailabilityZones=["us-east-1a"], LifecycleHookSpecificationList=[{
            "LifecycleHookName": "other-launch", "HeartbeatTimeout": 3600,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "DefaultResult": "ABANDON"}])
    group = c("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[OTHER_ASG])
    iam_obj.other_instance = group["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    doc = json.dumps({"instanceId": iam_obj.other_instance, "region": "us-east-1"})
    ci = ecs.register_container_instance(cluster=OTHER_CLUSTER, instanceIdentityDocument=doc)
    iam_obj.other_container_instance = ci["containerInstance"]["containerInstanceArn"]


@pytest.fixture(scope="module")
def stack(moto_server, tmp_path_factory):
    moto_server.reset()
    s = Iam(moto_server, tmp_path_factory.mktemp("fleet-iam"))
    prepare_moto(moto_server.client, docker_config_json("https://index.docker.io/v1/", "fleet",
                                                        "fl33t-pass"))
    other_world(moto_server.client, s)
    s.tf.init()
    s.tf.apply({"agent_settings": SETTINGS})
    s.out = s.tf.outputs()
    s.plan = s.tf.plan({"agent_settings": SETTINGS})
    s.admin = iam_ext.admin_credentials(moto_server.client("iam"))
    creds = moto_server.client("sts").assume_role(
        RoleArn=s.out["role_arn"], RoleSessionName="i-fleet")["Credentials"]
    s.role = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
              "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
              "AWS_SESSION_TOKEN": creds["SessionToken"]}
    s.fleet = Fleet(s.as_admin, moto_server.url, s.out["asg"],
                    tmp_path_factory.mktemp("iam-instances"), ecs_boot_binary(), credentials=s.role)
    iam_ext.set_enforcement(0)
    try:
        yield s
    finally:
        iam_ext.set_enforcement(float("inf"))
        s.fleet.stop_all()
        moto_server.reset()


def code(call) -> str:
    """"allowed", "denied" (HTTP 403: moto's ECS/SSM bodies carry no parsable code) or the
    error code."""
    try:
        call()
    except ClientError as err:
        if err.response["ResponseMetadata"]["HTTPStatusCode"] == 403 or \
                err.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException"):
            return "denied"
        return err.response["Error"]["Code"]
    return "allowed"


def test_iam_is_enforced_for_everyone(stack):
    # The default harness key is no IAM identity: refused, so enforcement is really on.
    assert code(lambda: stack.moto.client("ecs").list_clusters()) == "denied"
    assert code(lambda: stack.as_admin("ecs").list_clusters()) == "allowed"


def test_boot_and_drain_succeed_with_the_module_role(stack):
    asg = stack.as_admin("autoscaling")
    asg.set_desired_capacity(AutoScalingGroupName=stack.out["asg"], DesiredCapacity=1)
    [iid] = stack.fleet.sync()
    wait_for(lambda: completions(stack.out["launch_hook"], iid), 60,
             what="launch hook completion under the role")
    [boot] = completions(stack.out["launch_hook"], iid)
    assert boot["result"] == "CONTINUE", stack.fleet.instances[iid].log()
    asg.set_instance_protection(AutoScalingGroupName=stack.out["asg"], InstanceIds=[iid],
                                ProtectedFromScaleIn=False)
    asg.set_desired_capacity(AutoScalingGroupName=stack.out["asg"], DesiredCapacity=0)
    wait_for(lambda: completions(stack.out["terminate_hook"], iid), 60,
             what="terminate hook completion under the role")
    [drain] = completions(stack.out["terminate_hook"], iid)
    assert drain["result"] == "CONTINUE", stack.fleet.instances[iid].log()
    ecs = stack.as_admin("ecs")
    [ci] = ecs.describe_container_instances(
        cluster=stack.out["cluster"],
        containerInstances=ecs.list_container_instances(
            cluster=stack.out["cluster"])["containerInstanceArns"])["containerInstances"]
    assert ci["status"] == "DRAINING"
    # Every call ecs-boot made went through IAM and none was refused.
    calls = [c for c in stack.moto.calls(source="client")]
    assert {c["action"] for c in calls} >= {"CompleteLifecycleAction", "GetObject",
                                           "UpdateContainerInstancesState"}, calls
    refused = [(c["action"], c["status"]) for c in calls if c["status"] >= 400]
    assert not refused, f"ecs-boot was refused under the module's role: {refused}"


def _complete_other(s):
    return s.as_role("autoscaling").complete_lifecycle_action(
        AutoScalingGroupName=OTHER_ASG, LifecycleHookName="other-launch",
        InstanceId=s.other_instance, LifecycleActionResult="CONTINUE")


ROWS = {
    "CompleteLifecycleAction on another group": _complete_other,
    "GetObject of another object": lambda s: s.as_role("s3").get_object(
        Bucket=REGISTRY_BUCKET, Key=DENIED_OBJECT),
    "GetParameter of another parameter": lambda s: s.as_role("ssm").get_parameter(
        Name="/other/plain"),
    "GetParameter of another SecureString": lambda s: s.as_role("ssm").get_parameter(
        Name="/other/secret", WithDecryption=True),
    "DeregisterContainerInstance": lambda s: s.as_role("ecs").deregister_container_instance(
        cluster=OTHER_CLUSTER, containerInstance=s.other_container_instance, force=True),
    "CreateCluster": lambda s: s.as_role("ecs").create_cluster(clusterName="rogue"),
}

# The same calls within the module's scope: allowed, so a denial above is the scope's doing.
ALLOWED = {
    "GetObject of the registry credentials": lambda s: s.as_role("s3").get_object(
        Bucket=REGISTRY_BUCKET, Key=REGISTRY_KEY),
    "GetParameter under registry_auth_locations": lambda s: s.as_role("ssm").get_parameter(
        Name=ALLOWED_PARAMETER, WithDecryption=True),
}


@pytest.mark.parametrize("row", list(ROWS))
def test_denied(stack, row):
    assert code(lambda: ROWS[row](stack)) == "denied"
    [logged] = [c for c in stack.moto.calls() if c["source"] == "client"][-1:]
    assert logged["status"] == 403, logged
    assert lifecycle.find_state("us-east-1", OTHER_ASG, stack.other_instance)\
        .lifecycle_state == "Pending:Wait", "the other group's instance was touched"


@pytest.mark.parametrize("row", list(ALLOWED))
def test_allowed_twin(stack, row):
    assert code(lambda: ALLOWED[row](stack)) == "allowed"


def _statements(stack) -> list[dict]:
    values = stack.plan.planned_values()
    docs = [json.loads(v["policy"]) for a, v in values.items()
            if a.startswith("module.fleet.aws_iam_role_policy.")]
    return [st for d in docs for st in d["Statement"]]


def _granting(stack, action) -> list[dict]:
    def matches(pattern):
        return pattern == action or (pattern.endswith("*")
                                     and action.startswith(pattern[:-1]))
    out = []
    for st in _statements(stack):
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if st.get("Effect", "Allow") == "Allow" and any(matches(a) for a in actions):
            out.append(st)
    return out


def test_drain_calls_limited_to_this_cluster_by_condition(stack):
    """moto cannot evaluate ecs:cluster: UpdateContainerInstancesState on another cluster is
    denied by AWS through this condition, asserted from the plan."""
    for action in ("ecs:UpdateContainerInstancesState", "ecs:DescribeContainerInstances",
                   "ecs:ListTasks", "ecs:StopTask"):
        grants = _granting(stack, action)
        assert grants, action
        for st in grants:
            assert st.get("Condition") == {"ArnEquals": {"ecs:cluster": stack.out[
                "cluster_arn"]}}, (action, st)


def test_nothing_grants_what_the_table_denies(stack):
    for action in ("ecs:CreateCluster", "ecs:DeregisterContainerInstance"):
        assert not _granting(stack, action), action
    for st in _granting(stack, "ssm:GetParameter") + _granting(stack, "ssm:GetParameters"):
        assert st["Resource"] != "*" and "*" not in [st["Resource"]], st
    for st in _granting(stack, "autoscaling:CompleteLifecycleAction"):
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        assert all(r.endswith(f"autoScalingGroupName/{stack.out['asg']}") for r in resources)


def test_kms_decrypt_only_via_s3_and_ssm(stack):
    """moto cannot evaluate kms:ViaService either (and SSM/S3 in moto never call KMS)."""
    for st in _granting(stack, "kms:Decrypt"):
        via = st["Condition"]["StringEquals"]["kms:ViaService"]
        via = via if isinstance(via, list) else [via]
        assert set(via) <= {"s3.us-east-1.amazonaws.com", "ssm.us-east-1.amazonaws.com"}, st
