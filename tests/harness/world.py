"""One call to build a simulated ecs-boot launch in moto and the fake IMDS.

Creates: registry credentials (S3 object in Docker config.json form, or an SSM SecureString),
an ECS cluster, a launch template, an ASG with launch and terminate hooks whose tags propagate to
the instance, one instance waiting in Pending:Wait, and the fake IMDS mirroring that instance.
Talks to moto over HTTP only, so it works against any running harness (up.py, the fixtures).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field

from . import lifecycle
from .imds import FakeImds
from .moto_ext import REGION, make_client

LAUNCH_HOOK = "ecs-boot-launch"
TERMINATE_HOOK = "ecs-boot-terminate"
AMI = "ami-12c6146b"  # one of moto's built-in AMIs
# IMDS target-lifecycle-state for each Wait state the harness enters (docs/aws-facts.md §3).
TARGET_STATE = {
    "Pending:Wait": "InService",
    "Warmed:Pending:Wait": "Warmed:Stopped",
    "Terminating:Wait": "Terminated",
}


@dataclass
class World:
    name: str
    region: str
    cluster: str
    asg: str
    instance_id: str
    launch_template_id: str
    launch_hook: str | None
    terminate_hook: str | None
    registry_auth: str | None  # the ecs-boot:registry-auth tag value
    registry_user: str
    registry_password: str
    registry: str
    tags: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def trusted_prefixes(self) -> dict[str, list[str]]:
        """The `[trust]` allowlists an administrator would write for this world (what the
        Terraform module puts in user data): its config bucket's fragments/ and registry/, and
        its SSM path."""
        bucket = f"s3://{self.name}-boot-config/"
        return {"fragment_prefixes": [f"{bucket}fragments/", f"ssm:/{self.name}/fragments/"],
                "registry_auth_prefixes": [f"{bucket}registry/", f"ssm:/{self.name}/"]}


def trust_dropin(worlds: list[World], extra: dict[str, list[str]] | None = None) -> str:
    """A config.d drop-in opening every world's locations to its tags (the trusted channel)."""
    lists: dict[str, list[str]] = {"fragment_prefixes": [], "registry_auth_prefixes": []}
    sources = [w.trusted_prefixes() for w in worlds] + [extra or {}]
    for source in sources:
        for key, prefixes in source.items():
            lists[key] += [p for p in prefixes if p not in lists[key]]
    body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in lists.items())
    return "# written by the test harness, as user data would\n[trust]\n" + body


def docker_config(registry: str, user: str, password: str) -> dict:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"auths": {registry: {"auth": auth}}}


def build_world(
    moto_url: str,
    imds: FakeImds | None = None,
    *,
    name: str = "demo",
    cluster: str | None = None,
    creds: str | None = "s3",  # "s3", "ssm" or None (no registry credentials)
    registry: str = "https://index.docker.io/v1/",
    registry_user: str = "demo",
    registry_password: str = "s3cr3t-pass",
    launch_hook: bool = True,
    terminate_hook: bool = True,
    heartbeat_timeout: int = 30,
    default_result: str = "ABANDON",
    tags: dict | None = None,
    region: str = REGION,
) -> World:
    """Build the world; `tags` are extra ASG tags propagated to the instance (value None drops
    a default tag, e.g. {"ecs-boot:cluster": None} for a fail-closed test)."""
    def client(service: str):
        return make_client(service, moto_url, region)

    cluster = cluster or f"{name}-cluster"
    asg_name = f"{name}-asg"
    client("ecs").create_cluster(clusterName=cluster)

    secret = json.dumps(docker_config(registry, registry_user, registry_password))
    registry_auth = _store_credentials(client, name, creds, secret)

    ec2 = client("ec2")
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={
            "ImageId": AMI,
            "InstanceType": "t3.micro",
            # moto does not copy this to the instance; the fake IMDS serves tags regardless
            "MetadataOptions": {"HttpTokens": "required", "InstanceMetadataTags": "enabled"},
        },
    )["LaunchTemplate"]

    instance_tags = {"ecs-boot:cluster": cluster}
    if registry_auth:
        instance_tags["ecs-boot:registry-auth"] = registry_auth
    instance_tags.update(tags or {})
    instance_tags = {k: v for k, v in instance_tags.items() if v is not None}

    hooks = []
    if launch_hook:
        hooks.append(_hook(LAUNCH_HOOK, lifecycle.LAUNCHING, heartbeat_timeout, default_result))
    if terminate_hook:
        # AWS recommends CONTINUE on custom terminate hooks (docs/aws-facts.md §7)
        hooks.append(_hook(TERMINATE_HOOK, lifecycle.TERMINATING, heartbeat_timeout, "CONTINUE"))
    autoscaling = client("autoscaling")
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=asg_name,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"},
        MinSize=0, MaxSize=2, DesiredCapacity=1,
        AvailabilityZones=[f"{region}a"],
        LifecycleHookSpecificationList=hooks,
        Tags=[{"Key": k, "Value": v, "PropagateAtLaunch": True, "ResourceId": asg_name,
               "ResourceType": "auto-scaling-group"} for k, v in instance_tags.items()],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])
    instance_id = group["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]

    if imds is not None:
        imds.mirror_instance(ec2, instance_id)
        imds.set_target_lifecycle_state("InService")  # AWS sets it as the launch begins

    return World(
        name=name, region=region, cluster=cluster, asg=asg_name, instance_id=instance_id,
        launch_template_id=template["LaunchTemplateId"],
        launch_hook=LAUNCH_HOOK if launch_hook else None,
        terminate_hook=TERMINATE_HOOK if terminate_hook else None,
        registry_auth=registry_auth, registry=registry,
        registry_user=registry_user, registry_password=registry_password,
        tags=instance_tags,
    )


def _store_credentials(client, name: str, creds: str | None, secret: str) -> str | None:
    """Store the Docker config.json; return its ecs-boot:registry-auth location."""
    if creds == "s3":
        bucket, key = f"{name}-boot-config", "registry/config.json"
        s3 = client("s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=secret.encode())
        return f"s3://{bucket}/{key}"
    if creds == "ssm":
        param = f"/{name}/registry-auth"
        client("ssm").put_parameter(Name=param, Value=secret, Type="SecureString")
        return f"ssm:{param}"
    if creds is not None:
        raise ValueError(f"creds must be 's3', 'ssm' or None, not {creds!r}")
    return None


def _hook(name: str, transition: str, timeout: int, result: str) -> dict:
    return {"LifecycleHookName": name, "LifecycleTransition": transition,
            "HeartbeatTimeout": timeout, "DefaultResult": result}


def follow_lifecycle(imds: FakeImds, instance_id: str) -> None:
    """Keep the IMDS target-lifecycle-state in step with the harness's lifecycle changes, as AWS
    does (e.g. Terminating:Wait -> "Terminated"). In-process only: it hooks lifecycle.py, and is
    forgotten on moto reset."""

    def update(_asg: str, changed: str, state: str) -> None:
        if changed == instance_id and state in TARGET_STATE:
            imds.set_target_lifecycle_state(TARGET_STATE[state])

    lifecycle.add_listener(update)
