"""moto, extended with real lifecycle-hook semantics, served in-process on 127.0.0.1.

The patches must live in the server's interpreter because moto keeps its state in module globals
(docs/aws-facts.md §10). `install()` is idempotent; `MotoServer.start()` calls it.
"""

from __future__ import annotations

import json
import threading
import urllib.request

import boto3
from botocore.config import Config
from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import (
    AutoScalingBackend,
    FakeAutoScalingGroup,
    TerminateInstanceActivity,
)
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import EmptyResult
from moto.core.types import Base64EncodedString
from moto.ec2.models.launch_templates import LaunchTemplateVersion
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ecs.models import Container, Service, Task
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

from . import iam_ext, lifecycle, refresh, ssm_ext
from .calllog import HarnessApp

REGION = "us-east-1"
# Clients the harness itself makes carry this, so the call log can leave them out of counts.
HARNESS_USER_AGENT = "ecs-boot-harness"

_installed = False


# --- Auto Scaling API additions -------------------------------------------------------------


def _action_call(self, fn):
    try:
        return fn(
            self.region,
            self._get_param("AutoScalingGroupName"),
            self._get_param("LifecycleHookName"),
            instance_id=self._get_param("InstanceId"),
            token=self._get_param("LifecycleActionToken"),
        )
    except lifecycle.NoActiveAction as err:
        raise ValidationError(str(err)) from None


def complete_lifecycle_action(self):
    result = self._get_param("LifecycleActionResult")
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError("LifecycleActionResult must be CONTINUE or ABANDON")
    _action_call(self, lambda *a, **kw: lifecycle.complete(*a[:3], result, **kw))
    return EmptyResult()


def record_lifecycle_action_heartbeat(self):
    _action_call(self, lifecycle.heartbeat)
    return EmptyResult()


def _wrap_create_auto_scaling_group(original):
    def create_auto_scaling_group(self):
        # Hooks given at creation apply to the group's very first instances, so store them
        # before moto launches anything.
        for spec in self._get_param("LifecycleHookSpecificationList", []) or []:
            timeout = spec.get("HeartbeatTimeout")
            self.autoscaling_backend.create_lifecycle_hook(
                name=spec["LifecycleHookName"],
                as_name=self._get_param("AutoScalingGroupName"),
                transition=spec["LifecycleTransition"],
                timeout=int(timeout) if timeout is not None else None,
                result=spec.get("DefaultResult"),
            )
        return original(self)

    return create_auto_scaling_group


# --- Model patches ----------------------------------------------------------------------------


def _active_instances(self):
    return [s for s in self.instance_states if s.lifecycle_state in lifecycle.CAPACITY_STATES]


def _wrap_replace_instances(original):
    def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
        before = set(map(id, self.instance_states))
        original(self, count_needed, propagated_tags)
        # moto tags the template's default version; AWS tags the version the group launched.
        version = (self.ec2_launch_template.get_version(self.launch_template_version).number
                   if self.ec2_launch_template else None)
        for state in self.instance_states:
            if id(state) not in before:
                if version is not None:
                    state.instance.add_tags({"aws:ec2launchtemplate:version": str(version)})
                lifecycle.begin_wait(state, "Pending:Wait")

    return replace_autoscaling_group_instances


def _wrap_set_desired_capacity(original):
    def set_desired_capacity(self, new_capacity):
        # Scale-in with a terminate hook: the victims wait in Terminating:Wait (which no longer
        # counts as capacity), so moto's own scale-in then finds nothing left to remove.
        target = self.min_size if new_capacity is None else new_capacity
        active = [s for s in _active_instances(self) if not s.protected_from_scale_in]
        surplus = len(_active_instances(self)) - (target or 0)
        if surplus > 0 and not self.mixed_instances_policy:
            for state in active[:surplus]:
                if not lifecycle.begin_wait(state, "Terminating:Wait"):
                    break
        original(self, new_capacity)

    return set_desired_capacity


def _wrap_terminate_instance(original):
    def terminate_instance(self, instance_id, should_decrement):
        state = next(
            (s for g in self.autoscaling_groups.values() for s in g.instance_states
             if s.instance.id == instance_id),
            None,
        )
        if state is None or not lifecycle.hooks_for(self, state.auto_scaling_group_name,
                                                    lifecycle.TERMINATING):
            return original(self, instance_id, should_decrement)
        group = state.auto_scaling_group
        original_size = group.desired_capacity
        if state.lifecycle_state in lifecycle.CAPACITY_STATES:  # not already on its way out
            lifecycle.begin_wait(state, "Terminating:Wait")
        if should_decrement and group.desired_capacity:
            group.desired_capacity -= 1
        return TerminateInstanceActivity(state.instance, original_size)

    return terminate_instance


def _wrap_set_instance_protection(original):
    def set_instance_protection(self, group_name, instance_ids, protected_from_scale_in):
        original(self, group_name, instance_ids, protected_from_scale_in)
        # Auto Scaling keeps reconciling: once protection is lifted, a group above its desired
        # capacity scales in (moto only looks when the capacity is set).
        group = self.autoscaling_groups[group_name]
        if not protected_from_scale_in and len(_active_instances(group)) > (
                group.desired_capacity or 0):
            group.set_desired_capacity(group.desired_capacity)

    return set_instance_protection


def install() -> None:
    global _installed
    if _installed:
        return
    AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
    AutoScalingResponse.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat
    AutoScalingResponse.create_auto_scaling_group = _wrap_create_auto_scaling_group(
        AutoScalingResponse.create_auto_scaling_group
    )
    FakeAutoScalingGroup.active_instances = _active_instances
    FakeAutoScalingGroup.replace_autoscaling_group_instances = _wrap_replace_instances(
        FakeAutoScalingGroup.replace_autoscaling_group_instances
    )
    FakeAutoScalingGroup.set_desired_capacity = _wrap_set_desired_capacity(
        FakeAutoScalingGroup.set_desired_capacity
    )
    AutoScalingBackend.set_instance_protection = _wrap_set_instance_protection(
        AutoScalingBackend.set_instance_protection)
    AutoScalingBackend.terminate_instance = _wrap_terminate_instance(
        AutoScalingBackend.terminate_instance
    )
    # moto advances a task one step (RUNNING -> DEACTIVATING -> ... STOPPED) on every
    # DescribeTasks. Real tasks stop only when asked: StopTask, or the fake agent's drain.
    LaunchTemplateVersion.user_data = property(_template_user_data)
    LaunchTemplates.create_launch_template_version = _wrap_create_template_version(
        LaunchTemplates.create_launch_template_version)
    Task.advance = lambda self: None
    Container.__init__ = _wrap_container_init(Container.__init__)
    Service.__init__ = _wrap_service_init(Service.__init__)
    _relax_codebuild_locations()
    _codepipeline_epoch_timestamps()
    refresh.install()  # Start/Describe/Cancel/RollbackInstanceRefresh
    iam_ext.install()  # resource ARNs for IAM enforcement (ASG, ECS, SSM)
    ssm_ext.install()  # SSM Run Command that runs against simulated instances
    _installed = True


def _wrap_create_template_version(original):
    """CreateLaunchTemplateVersion with SourceVersion: AWS starts from the source version's data
    and overrides what the request names (moto 5.2.1 ignores SourceVersion and keeps only the
    request's data, so a new AMI version would lose the user data and everything else)."""
    import copy

    def create_launch_template_version(self):
        source = self._get_param("SourceVersion")
        if not source:
            return original(self)
        name, tid = self._get_param("LaunchTemplateName"), self._get_param("LaunchTemplateId")
        template = (self.ec2_backend.get_launch_template(tid) if tid
                    else self.ec2_backend.get_launch_template_by_name(name))
        base = copy.deepcopy(template.get_version(source).data)
        plain_get = self._get_param

        def get_param(key, default=None):
            value = plain_get(key, default)
            return {**base, **(value or {})} if key == "LaunchTemplateData" else value

        self._get_param = get_param
        return original(self)

    return create_launch_template_version


def _template_user_data(self):
    # CreateLaunchTemplateVersion stores UserData as a plain (base64) string, and moto's own
    # property then asserts when a group launches from that version.
    user_data = self.data.get("UserData")
    return Base64EncodedString(user_data) if isinstance(user_data, str) else user_data


def _wrap_container_init(original):
    def __init__(self, task_def):
        original(self, task_def)
        # ECS's Container shape has cpu and memory as strings; moto answers numbers, which the
        # Rust SDK (rightly) refuses to parse.
        self.cpu = None if self.cpu is None else str(self.cpu)
        self.memory = None if self.memory is None else str(self.memory)
    return __init__


def _wrap_service_init(original):
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        # moto answers `networkConfiguration: {}` for a service without one (bridge networking);
        # AWS leaves it out, and the Terraform AWS provider crashes on the empty object.
        if not self.network_configuration:
            self.network_configuration = None
    return __init__


def _relax_codebuild_locations():
    """moto requires a location for every CodeBuild source and artifact; AWS refuses one for
    CODEPIPELINE and NO_SOURCE sources and CODEPIPELINE artifacts (CodePipeline supplies them).
    And DeleteProject by ARN."""
    import moto.codebuild.responses as cb

    if getattr(cb, "_ecs_boot_relaxed", False):
        return
    check_source, check_artifacts = (cb._validate_required_params_source,
                                     cb._validate_required_params_artifacts)

    def source(src):
        if src.get("type") in ("CODEPIPELINE", "NO_SOURCE") and not src.get("location"):
            return
        check_source(src)

    def artifacts(art):
        if art.get("type") == "CODEPIPELINE" and not art.get("location"):
            return
        check_artifacts(art)

    cb._validate_required_params_source = source
    cb._validate_required_params_artifacts = artifacts

    # DeleteProject takes a name or an ARN (Terraform sends the ARN); moto looks up names only and
    # silently keeps the project.
    from moto.codebuild.models import CodeBuildBackend

    delete_project = CodeBuildBackend.delete_project

    def delete_by_name_or_arn(self, project_name):
        return delete_project(self, project_name.split(":project/", 1)[-1])

    CodeBuildBackend.delete_project = delete_by_name_or_arn
    cb._ecs_boot_relaxed = True


def _codepipeline_epoch_timestamps():
    """CodePipeline is a JSON protocol: timestamps are epoch numbers. moto 5.2.1 sends ISO strings
    in GetPipeline's metadata, which the AWS SDKs (Terraform's provider too) refuse to decode."""
    import calendar

    from moto.codepipeline.models import CodePipeline

    def metadata(self):
        return {
            "pipelineArn": self._arn,
            "created": calendar.timegm(self._created.utctimetuple()),
            "updated": calendar.timegm(self._updated.utctimetuple()),
        }

    CodePipeline.metadata = property(metadata)


# --- Server -----------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # one line per AWS call would drown test output
        pass


class MotoServer:
    """moto + harness admin routes (/_harness/...) on one loopback port."""

    def __init__(self, port: int = 0):
        self._port = port
        self._server = None
        self._thread = None
        self.app = None

    def start(self) -> "MotoServer":
        install()
        self.app = HarnessApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            "127.0.0.1", self._port, self.app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        lifecycle.reset()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"{self.url}/_harness"

    def client(self, service: str, region: str = REGION):
        return make_client(service, self.url, region)

    def reset(self) -> None:
        """moto's own reset plus the harness state (lifecycle actions, timers, call log)."""
        self._admin("POST", "/moto-api/reset", prefix="")

    # Admin helpers, in-process; the HTTP routes in admin.py do the same for other processes.

    def lifecycle_state(self, asg: str, instance_id: str, region: str = REGION) -> str | None:
        state = lifecycle.find_state(region, asg, instance_id)
        return state.lifecycle_state if state else None

    def set_lifecycle_state(self, asg, instance_id, state, region: str = REGION) -> None:
        lifecycle.set_state(region, asg, instance_id, state)

    def pending_actions(self, instance_id: str | None = None) -> list[dict]:
        return lifecycle.actions(instance_id)

    def completions(self) -> list[dict]:
        return lifecycle.completions()

    def refreshes(self, asg: str | None = None, region: str = REGION) -> list[dict]:
        """Instance refreshes, newest first, with the emulator's bookkeeping (refresh.py)."""
        return refresh.refreshes(asg, region)

    def advance_clock(self, seconds: float) -> None:
        """Move the instance-refresh clock (warm-up, checkpoint delay, bake time) and step."""
        refresh.advance(seconds)

    def calls(self, **filters) -> list[dict]:
        """Logged AWS calls; filters: service, action, source ("client", "harness", ...)."""
        return self.app.log.entries(**filters)

    def reset_calls(self) -> None:
        self.app.log.clear()

    def hold(self, service: str, action: str, when: str = "after", params: dict | None = None,
             limit: float = 120):
        """Hold the answer to the next matching call (calllog.Hold): `.wait_arrived(timeout)`
        returns the logged call once it reached the harness, `.release()` lets the answer go.
        when="after": moto has acted on the call; "before": it has not seen it yet."""
        return self.app.holds.add({"service": service, "action": action, "when": when,
                                   "params": params or {}, "limit": limit})

    def throttle(self, service: str, rate: float, burst: float | None = None,
                 action: str | None = None, source: str | None = None) -> dict:
        """An account-level rate limit (throttle.py): calls beyond a token bucket of `rate` per
        second and `burst` get the service's throttling error. Cleared by reset()."""
        return self.app.throttles.add({"service": service, "action": action, "source": source,
                                       "rate": rate, "burst": burst})

    def throttles(self) -> list[dict]:
        """Each rate limit with how many calls it let through and refused."""
        return self.app.throttles.rules()

    def release_holds(self) -> None:
        self.app.holds.clear()

    def _admin(self, method: str, path: str, body=None, prefix: str = "/_harness"):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + prefix + path, data=data, method=method)
        # 120 s: a reset reloads the AWS-managed policies when they are loaded, slow on a busy machine.
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.read()


def make_client(service: str, endpoint: str, region: str = REGION, user_agent=HARNESS_USER_AGENT):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            user_agent_extra=user_agent,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )
