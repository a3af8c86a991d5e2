"""Resource ARNs for moto's IAM enforcement of the Auto Scaling, ECS and SSM calls ecs-boot makes.

moto 5.2.1 enforces IAM once INITIAL_NO_AUTH_ACTION_COUNT calls have been made (one counter for
the whole server; `POST /moto-api/reset-auth` with a number sets it and restarts the count), but
checks every action against resource "*" unless the response class has `_determine_resource`
(SQS does; S3 builds its own bucket/object ARNs). A policy scoped to a group, a parameter or a
container instance would then deny the legitimate call too. `install()` gives those classes the
ARN AWS evaluates (Service Authorization Reference), from the request's parameters.

Limits (moto, not us): one resource per call (the first of a list: ecs-boot passes one container
instance at a time), and every policy condition counts as met (ecs:cluster, kms:ViaService,
ecs:CreateAction, aws:ResourceTag/...): the tests assert conditions from the plan instead
(cloudwatch:namespace too). And moto checks CloudWatch's actions as "monitoring:*", its signing
name: `install()` renames them to IAM's "cloudwatch:*".
"""

from __future__ import annotations

import json

from moto.autoscaling.responses import AutoScalingResponse
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.ssm.responses import SimpleSystemManagerResponse

# Auto Scaling actions with resource type autoScalingGroup (the rest take "*").
ASG_SCOPED = {"CompleteLifecycleAction", "RecordLifecycleActionHeartbeat",
              "SetInstanceProtection", "TerminateInstanceInAutoScalingGroup",
              "SetDesiredCapacity", "UpdateAutoScalingGroup", "PutLifecycleHook",
              "DeleteLifecycleHook", "StartInstanceRefresh", "CancelInstanceRefresh",
              "RollbackInstanceRefresh", "DeleteAutoScalingGroup"}
# ECS actions on container-instance ARNs, on the cluster ARN, and on task ARNs.
ECS_CONTAINER_INSTANCE = {"UpdateContainerInstancesState", "DescribeContainerInstances"}
ECS_CLUSTER = {"ListTasks", "ListContainerInstances", "DeregisterContainerInstance",
               "RegisterContainerInstance", "DescribeClusters", "DeleteCluster"}
ECS_TASK = {"DescribeTasks", "StopTask"}
SSM_PARAMETER = {"GetParameter", "GetParameters", "PutParameter", "DeleteParameter",
                 "GetParametersByPath"}


def _first(value):
    return (value[0] if value else None) if isinstance(value, list) else value


def _asg_resource(self) -> str:
    if self._get_action() not in ASG_SCOPED:
        return "*"
    name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    if group is not None:
        return group.arn
    return (f"arn:aws:autoscaling:{self.region}:{self.current_account}:autoScalingGroup:"
            f"00000000-0000-0000-0000-000000000000:autoScalingGroupName/{name}")


def _ecs_name(value: str | None, default: str = "default") -> str:
    return (value or default).split("/")[-1]


def _ecs_resource(self) -> str:
    action = self._get_action()
    prefix = f"arn:aws:ecs:{self.region}:{self.current_account}"
    cluster = _ecs_name(self._get_param("cluster"))
    if action in ECS_CONTAINER_INSTANCE:
        ref = _first(self._get_param("containerInstances"))
        return f"{prefix}:container-instance/{cluster}/{_ecs_name(ref, '*')}"
    if action in ECS_CLUSTER:
        return f"{prefix}:cluster/{cluster}"
    if action in ECS_TASK:
        ref = _first(self._get_param("tasks")) or self._get_param("task")
        return f"{prefix}:task/{cluster}/{_ecs_name(ref, '*')}"
    return "*"


def _ssm_resource(self) -> str:
    if self._get_action() not in SSM_PARAMETER:
        return "*"
    name = self._get_param("Name") or self._get_param("Path") or _first(
        self._get_param("Names"))
    if not name:
        return "*"
    return (f"arn:aws:ssm:{self.region}:{self.current_account}:parameter/"
            f"{name.lstrip('/')}")


# moto names the action after the SigV4 signing name ("monitoring:PutMetricData"); IAM's action
# prefix differs from the signing name for CloudWatch ("cloudwatch:PutMetricData", Service
# Authorization Reference), so a correct policy would be refused. The request's action is renamed
# to what AWS evaluates.
IAM_PREFIX = {"monitoring": "cloudwatch"}


def _patch_action_prefix() -> None:
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase.__init__
    if getattr(original, "_ecs_boot_patched", False):
        return

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        prefix = IAM_PREFIX.get(self._service)
        if prefix:
            self._action = prefix + self._action[len(self._service):]

    init._ecs_boot_patched = True
    IAMRequestBase.__init__ = init


def install() -> None:
    AutoScalingResponse._determine_resource = _asg_resource
    EC2ContainerServiceResponse._determine_resource = _ecs_resource
    SimpleSystemManagerResponse._determine_resource = _ssm_resource
    _patch_action_prefix()


def set_enforcement(after_calls: float) -> None:
    """Enforce IAM after `after_calls` more calls (inf = never): what POST /moto-api/reset-auth
    does, in-process (the server is this interpreter; through the harness's WSGI wrapper that
    route answers 500)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    settings.INITIAL_NO_AUTH_ACTION_COUNT = float(after_calls)
    ActionAuthenticatorMixin.request_count = 0


ADMIN_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def admin_credentials(iam) -> dict[str, str]:
    """An IAM user allowed everything, for the harness's own calls once IAM is enforced (the
    default `testing` key is no IAM identity and would be refused)."""
    iam.create_user(UserName="harness-admin")
    iam.put_user_policy(UserName="harness-admin", PolicyName="all",
                        PolicyDocument=ADMIN_POLICY)
    key = iam.create_access_key(UserName="harness-admin")["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


ACCOUNT = DEFAULT_ACCOUNT_ID
