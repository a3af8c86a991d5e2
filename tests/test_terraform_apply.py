"""The Terraform module applied for real against moto (issue 17): init from the offline provider
mirror, apply, a second plan with no change, destroy with nothing left behind; and each defect a
real apply exposed, with the plan JSON (or what moto holds) as the evidence.

One test root using the module as the README tells users (source = "../../") is applied once per
module run; the change tests plan variations against its state. The complete example (two groups
in one cluster) is applied, re-planned and destroyed on its own.
"""

from __future__ import annotations

import base64
import json
import re
import tomllib

import pytest
import yaml
from moto.events.models import EventPattern

from destroy_drain import DestroyOrder, StandInDrainer
from harness.terraform import (TerraformError, TerraformRoot, inventory,
                               managed_policies_loaded, managed_policy_document)

pytestmark = pytest.mark.e2e

AMI = "ami-12c6146b"
AMI_ARM = "ami-0a1b2c3d"
# The SSM parameter the Packer build publishes (the module's default name); the test creates it,
# as the Packer step would.
AMI_PARAMETERS = {"/ecs-boot/ami/x86_64": AMI, "/ecs-boot/ami/arm64": AMI_ARM}

GROUP_ROOT = """
module "group" {
  source = "../../"

  # Starts with "ecs": AWS refuses such capacity provider names.
  name       = "ecs-web"
  vpc_id     = aws_vpc.this.id
  subnet_ids = [aws_subnet.a.id, aws_subnet.b.id]
  min_size   = 1

  architecture            = var.architecture
  drain_deadline          = var.drain_deadline
  drainer                 = var.drainer
  terminate_hook          = var.terminate_hook
  registry_auth           = "ssm:/ecs-boot/web/registry-auth"
  fragment_locations      = ["s3://cfg-bucket/ecs-boot/web/"]
  registry_auth_locations = ["ssm:/ecs-boot/web/"]
  config_location         = var.config_location
  instance_attributes     = var.instance_attributes
  warm_pool               = var.warm_pool
  mixed_instances         = var.mixed_instances
  metrics                 = var.metrics
  host_logs               = var.host_logs
}

resource "aws_vpc" "this" {
  cidr_block = "10.50.0.0/16"
}

resource "aws_subnet" "a" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = "10.50.0.0/20"
  availability_zone = "us-east-1a"
}

resource "aws_subnet" "b" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = "10.50.16.0/20"
  availability_zone = "us-east-1b"
}

variable "architecture" {
  type    = string
  default = "x86_64"
}
variable "drain_deadline" {
  type    = number
  default = 900
}
variable "drainer" {
  type    = string
  default = "ecs-boot"
}
variable "terminate_hook" {
  type    = any
  default = {}
}
variable "config_location" {
  type    = string
  default = null
}
variable "instance_attributes" {
  type    = map(string)
  default = { stack = "blue" }
}
variable "warm_pool" {
  type    = any
  default = null
}
variable "mixed_instances" {
  type    = any
  default = null
}
variable "metrics" {
  type    = any
  default = {}
}
variable "host_logs" {
  type    = bool
  default = true
}

output "cluster_name" {
  value = module.group.cluster_name
}
output "capacity_provider_name" {
  value = module.group.capacity_provider_name
}
output "autoscaling_group_name" {
  value = module.group.autoscaling_group_name
}
output "iam_role_name" {
  value = module.group.iam_role_name
}
output "user_data_config" {
  value = module.group.user_data_config
}
"""

ASG = "module.group.aws_autoscaling_group.this"
DRAIN = "module.group.terraform_data.drain_on_destroy[0]"


def put_ami_parameters(moto):
    ssm = moto.client("ssm")
    for name, value in AMI_PARAMETERS.items():
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


@pytest.fixture(scope="module")
def group(moto_server, tmp_path_factory):
    """The group root applied once: (root, outputs). Destroyed at the end; the last test checks
    that nothing is left."""
    with managed_policies_loaded(moto_server):
        put_ami_parameters(moto_server)
        root = TerraformRoot.test_root("group", GROUP_ROOT, tmp_path_factory.mktemp("group"),
                                       moto_server.url)
        root.init()
        root.apply()
        yield root, root.outputs()


@pytest.fixture(scope="module")
def replan(group):
    """The second plan, with the configuration as applied (one terraform run, several tests)."""
    return group[0].plan()


def test_group_applies_and_a_second_plan_shows_no_change(replan):
    assert replan.exit_code == 0, replan.actions()


def test_capacity_provider_name_avoids_reserved_prefixes(group, moto_server):
    _, out = group
    assert out["capacity_provider_name"] == "cp-ecs-web"
    # The cluster has it associated once the output is known (the output waits for it).
    cluster = moto_server.client("ecs").describe_clusters(clusters=[out["cluster_name"]])["clusters"][0]
    assert cluster["capacityProviders"] == ["cp-ecs-web"]


def test_iam_role_and_profile_names_are_prefixes(group, moto_server):
    _, out = group
    iam = moto_server.client("iam")
    assert re.fullmatch(r"ecs-web-\d{26}", out["iam_role_name"]), out["iam_role_name"]
    profiles = iam.list_instance_profiles_for_role(RoleName=out["iam_role_name"])["InstanceProfiles"]
    assert [re.fullmatch(r"ecs-web-\d{26}", p["InstanceProfileName"]) is not None for p in profiles] == [True]


def _statements(doc: dict) -> set[tuple]:
    """(action, resource, condition) for every allowed action of a policy document."""
    out = set()
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        cond = json.dumps(st.get("Condition", {}), sort_keys=True)
        for a in actions:
            for r in resources:
                out.add((a, r, cond))
    return out


def test_instance_policies_are_the_managed_ones_minus_exactly_the_broad_actions(group, moto_server):
    _, out = group
    iam = moto_server.client("iam")
    role = out["iam_role_name"]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    inline = {name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
              for name in iam.list_role_policies(RoleName=role)["PolicyNames"]}
    assert set(inline) == {"ecs-instance", "ssm-instance", "ecs-boot", "host-logs"}

    managed = (_statements(managed_policy_document(moto_server, "AmazonEC2ContainerServiceforEC2Role",
                                                   "/service-role/"))
               | _statements(managed_policy_document(moto_server, "AmazonSSMManagedInstanceCore")))
    copies = _statements(inline["ecs-instance"]) | _statements(inline["ssm-instance"])
    assert copies <= managed, f"copies allow more than the managed policies: {copies - managed}"
    removed = {(a, r) for a, r, _ in managed - copies}
    assert removed == {
        ("ssm:GetParameter", "*"), ("ssm:GetParameters", "*"), ("ecs:CreateCluster", "*"),
        ("ecs:DeregisterContainerInstance", "*"), ("ecs:UpdateContainerInstancesState", "*"),
    }
    # Draining stays possible, in this cluster only.
    ecs_boot = [s for s in inline["ecs-boot"]["Statement"]
                if "ecs:UpdateContainerInstancesState" in s["Action"]]
    cluster_arn = f"arn:aws:ecs:us-east-1:123456789012:cluster/{out['cluster_name']}"
    assert [s["Condition"] for s in ecs_boot] == [{"ArnEquals": {"ecs:cluster": cluster_arn}}]
    # ecs-boot's own reads: its credentials, and under the allowlisted prefixes only.
    resources = {r for s in inline["ecs-boot"]["Statement"] if "ssm:GetParameter" in s["Action"]
                 for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    assert "*" not in resources
    assert resources == {"arn:aws:ssm:us-east-1:123456789012:parameter/ecs-boot/web/registry-auth",
                         "arn:aws:ssm:us-east-1:123456789012:parameter/ecs-boot/web/*"}


def _user_data_config(moto, group_name: str) -> tuple[dict, str]:
    """The config.d file the launch template's user data writes, parsed as TOML, and its path."""
    asg = moto.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group_name])["AutoScalingGroups"][0]
    spec = asg.get("LaunchTemplate") or asg["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    data = moto.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=spec["LaunchTemplateId"], Versions=["$Latest"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    text = base64.b64decode(data["UserData"]).decode()
    assert text.startswith("#cloud-config\n"), text[:80]
    (entry,) = yaml.safe_load(text)["write_files"]
    return tomllib.loads(entry["content"]), entry["path"]


def test_per_group_settings_reach_ecs_boot_through_user_data_not_tags(group, moto_server):
    _, out = group
    config, path = _user_data_config(moto_server, out["autoscaling_group_name"])
    assert path == "/etc/ecs-boot/config.d/50-terraform.toml"
    assert config == {
        "ecs": {"cluster": out["cluster_name"], "registry_auth": "ssm:/ecs-boot/web/registry-auth",
                "settings": {"ECS_AWSVPC_BLOCK_IMDS": "true"}},
        "lifecycle": {"launch_hook": "ecs-web-launch", "terminate_hook": "ecs-web-terminate"},
        "drain": {"deadline": "900s"},
        "metrics": {"enabled": True, "namespace": "ECSBoot"},
        "logs": {"enabled": True, "group": "/ecs-boot/ecs-web"},
        "trust": {"fragment_prefixes": ["s3://cfg-bucket/ecs-boot/web/"],
                  "registry_auth_prefixes": ["ssm:/ecs-boot/web/"]},
    }
    asg = moto_server.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[out["autoscaling_group_name"]])["AutoScalingGroups"][0]
    ecs_boot_tags = {t["Key"] for t in asg["Tags"] if t["Key"].startswith("ecs-boot:")}
    assert ecs_boot_tags == {"ecs-boot:attribute:stack"}, "tags only place instances"


def test_hooks_are_separate_and_drain_timing_follows_the_deadline(group, moto_server):
    root, out = group
    hooks = {h["LifecycleTransition"]: h for h in moto_server.client("autoscaling").describe_lifecycle_hooks(
        AutoScalingGroupName=out["autoscaling_group_name"])["LifecycleHooks"]}
    assert hooks["autoscaling:EC2_INSTANCE_TERMINATING"]["HeartbeatTimeout"] == 900 + 120
    assert hooks["autoscaling:EC2_INSTANCE_TERMINATING"]["DefaultResult"] == "CONTINUE"
    assert hooks["autoscaling:EC2_INSTANCE_LAUNCHING"]["DefaultResult"] == "ABANDON"
    state = {r["address"]: r for r in _state_resources(root.state())}
    asg = state[ASG]["values"]
    assert asg["force_delete"] is False
    assert asg["timeouts"]["delete"] == f"{900 + 900}s"
    assert asg["initial_lifecycle_hook"] == []
    # Destroyed before its permissions and cluster: it depends on them.
    deps = set(state[ASG].get("depends_on", []))
    assert {"module.group.aws_iam_role_policy.ecs_boot", "module.group.aws_iam_role_policy.ecs_instance",
            "module.group.aws_iam_role_policy.ssm_instance"} <= deps, deps
    assert any(d.startswith("module.group.module.cluster") for d in deps), deps
    # Destroyed before the hooks, the group and the capacity provider: it drains the group first.
    drain = state[DRAIN]
    assert set(drain.get("depends_on", [])) >= {
        ASG, "module.group.aws_autoscaling_lifecycle_hook.launch",
        "module.group.aws_autoscaling_lifecycle_hook.terminate",
        "module.group.aws_ecs_capacity_provider.this",
        "module.group.module.cluster.aws_ecs_cluster_capacity_providers.this"}, drain.get("depends_on")
    assert drain["values"]["input"]["group"] == out["autoscaling_group_name"]
    assert drain["values"]["input"]["timeout"] == 900 + 900


def _state_resources(state: dict):
    def walk(module):
        yield from module.get("resources", [])
        for child in module.get("child_modules", []):
            yield from walk(child)
    yield from walk(state.get("values", {}).get("root_module", {}))


def test_hook_drainer_and_deadline_changes_never_replace_the_group(group):
    root, _ = group
    plan = root.plan({"terminate_hook": {"heartbeat_timeout": 1800, "name": "drain-me"},
                      "drainer": "ecs-managed", "drain_deadline": 1200,
                      "instance_attributes": {"stack": "green"}}, refresh=False)
    actions = plan.actions()
    assert actions[ASG] == ["update"], actions
    assert not [a for a in plan.replaced() if "aws_autoscaling_group" in a], plan.replaced()
    assert actions["module.group.aws_autoscaling_lifecycle_hook.terminate[0]"] == ["delete"]
    assert actions["module.group.aws_launch_template.this"] == ["update"]
    # The destroy-time drain follows the deadline in place: replacing it would run the drain,
    # emptying the group in the middle of an apply.
    assert actions[DRAIN] == ["update"], actions
    assert plan.change(DRAIN)["change"]["after"]["input"]["timeout"] == 1200 + 900
    after = plan.change(ASG)["change"]["after"]
    # Tags (placement) and the launch template (user data) both start an instance refresh.
    assert "tag" in after["instance_refresh"][0]["triggers"]
    assert after["timeouts"]["delete"] == f"{1200 + 900}s"
    user_data = base64.b64decode(plan.change("module.group.aws_launch_template.this")["change"]["after"]["user_data"]).decode()
    content = yaml.safe_load(user_data)["write_files"][0]["content"]
    config = tomllib.loads(content)
    assert config["drain"] == {"enabled": False, "deadline": "1200s"}
    assert "terminate_hook" not in config["lifecycle"]
    cp = plan.change("module.group.aws_ecs_capacity_provider.this")["change"]
    assert cp["actions"] == ["update"]
    assert cp["after"]["auto_scaling_group_provider"][0]["managed_draining"] == "ENABLED"


def test_a_hook_timeout_change_updates_the_hook_in_place(group):
    root, _ = group
    plan = root.plan({"terminate_hook": {"heartbeat_timeout": 1800}}, refresh=False)
    assert plan.actions() == {"module.group.aws_autoscaling_lifecycle_hook.terminate[0]": ["update"]}


@pytest.mark.parametrize("vars, messages", [
    ({"terminate_hook": {"heartbeat_timeout": 600}, "drain_deadline": 900}, ["at least drain_deadline"]),
    # Both preconditions of the group: one plan reports each.
    ({"warm_pool": {}, "mixed_instances": {"instance_types": ["m5.large", "m6i.large"]},
      "config_location": "s3://other-bucket/x.toml"},
     ["warm_pool cannot be used with mixed_instances", "config_location must lie under"]),
], ids=["heartbeat shorter than deadline", "warm pool with spot, fragment outside allowlist"])
def test_combinations_that_cannot_work_are_refused(group, vars, messages):
    root, _ = group
    out = re.sub(r"\s+", " ", root.plan_error(vars))
    for message in messages:
        assert message in out, out


def test_ami_comes_from_the_parameter_per_architecture(group, moto_server):
    root, _ = group
    lt = [r for r in _state_resources(root.state()) if r["address"] == "module.group.aws_launch_template.this"][0]
    assert lt["values"]["image_id"] == AMI
    plan = root.plan({"architecture": "arm64"}, refresh=False)
    after = plan.change("module.group.aws_launch_template.this")["change"]["after"]
    assert after["image_id"] == AMI_ARM
    assert not plan.replaced()


def test_outputs_wait_for_the_cluster_and_its_provider_association(replan):
    config = replan.json["configuration"]["root_module"]["module_calls"]["group"]["module"]
    cluster_mod = config["module_calls"]["cluster"]["module"]
    refs = cluster_mod["outputs"]["cluster_name"]["expression"]["references"]
    assert "aws_ecs_cluster_capacity_providers.this" in refs, refs
    assert cluster_mod["outputs"]["cluster_arn"]["depends_on"] == ["aws_ecs_cluster_capacity_providers.this"]
    assert "aws_ecs_cluster_capacity_providers.this" in cluster_mod["outputs"]["capacity_providers"]["expression"]["references"]
    group_outputs = config["outputs"]
    assert "module.cluster[0].cluster_name" in group_outputs["cluster_name"]["expression"]["references"]
    assert "module.cluster[0].capacity_providers" in group_outputs["capacity_provider_name"]["expression"]["references"]


STOP_CODES = {"EssentialContainerExited": True, "TaskFailedToStart": True,
              "ServiceSchedulerInitiated": False, "SpotInterruption": False,
              "TerminationNotice": False, "UserInitiated": False}


def test_stopped_task_alerts_match_stop_codes(group, moto_server):
    _, out = group
    events = moto_server.client("events")
    pattern = events.describe_rule(Name="ecs-web-task-failed")["EventPattern"]
    cluster_arn = f"arn:aws:ecs:us-east-1:123456789012:cluster/{out['cluster_name']}"
    got = {}
    for code in STOP_CODES:
        event = {"id": "1", "source": "aws.ecs", "detail-type": "ECS Task State Change",
                 "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
                 "resources": [], "detail": {"clusterArn": cluster_arn, "lastStatus": "STOPPED",
                                             "stopCode": code, "containers": [{"name": "app"}]}}
        # moto has no TestEventPattern; this is the matcher its PutEvents routes with.
        got[code] = EventPattern.load(pattern).matches_event(event)
    assert got == STOP_CODES
    refresh = json.loads(events.describe_rule(Name="ecs-web-refresh-failed")["EventPattern"])
    assert refresh["detail-type"] == ["EC2 Auto Scaling Instance Refresh Failed"]
    assert refresh["detail"] == {"AutoScalingGroupName": [out["autoscaling_group_name"]]}
    targets = events.list_targets_by_rule(Rule="ecs-web-refresh-failed")["Targets"]
    assert [t["Arn"].rsplit(":", 1)[-1] for t in targets] == ["ecs-web-task-failures"]


ALARMS = {
    "ecs-web-abandon": ("Abandons", "Maximum", None),
    "ecs-web-drain-deadline": ("DrainDeadlineHit", "Maximum", None),
    "ecs-web-essential-container": ("EssentialContainerFailures", "Maximum", None),
    "ecs-web-boot-duration": ("BootDuration", None, "p90"),
    "ecs-web-disk-root": ("disk_used_percent", "Maximum", None),
    "ecs-web-disk-docker": ("disk_used_percent", "Maximum", None),
    "ecs-web-memory": ("mem_available_percent", "Minimum", None),
}


def test_alarms_watch_the_group_and_alert_the_topic(group, moto_server):
    _, out = group
    alarms = {a["AlarmName"]: a for a in moto_server.client("cloudwatch").describe_alarms(
        AlarmNamePrefix="ecs-web-")["MetricAlarms"]}
    assert set(alarms) == set(ALARMS)
    topic = [t["TopicArn"] for t in moto_server.client("sns").list_topics()["Topics"]
             if t["TopicArn"].endswith(":ecs-web-task-failures")]
    for name, (metric, stat, extended) in ALARMS.items():
        a = alarms[name]
        dims = {d["Name"]: d["Value"] for d in a["Dimensions"]}
        assert (a["Namespace"], a["MetricName"]) == ("ECSBoot", metric), name
        assert a.get("Statistic") == stat and a.get("ExtendedStatistic") == extended, name
        assert dims["AutoScalingGroupName"] == out["autoscaling_group_name"], name
        if metric[0].isupper():  # ecs-boot's own metrics carry the cluster too
            assert dims == {"AutoScalingGroupName": out["autoscaling_group_name"],
                            "ClusterName": out["cluster_name"]}, name
        assert a["AlarmActions"] == topic and a["TreatMissingData"] == "notBreaching", name
    assert alarms["ecs-web-boot-duration"]["Threshold"] == 600
    assert {d["Value"] for n in ("ecs-web-disk-root", "ecs-web-disk-docker")
            for d in alarms[n]["Dimensions"] if d["Name"] == "path"} == {"/", "/var/lib/docker"}


def _ecs_boot_policy(plan) -> dict:
    return json.loads(plan.planned_values()["module.group.aws_iam_role_policy.ecs_boot"]["policy"])


def test_metrics_may_go_into_the_modules_namespace_only(group, replan):
    # moto counts every condition as met, so the condition is asserted on the plan.
    (put,) = [s for s in _ecs_boot_policy(replan)["Statement"]
              if "cloudwatch:PutMetricData" in s["Action"]]
    assert put["Action"] == "cloudwatch:PutMetricData" and put["Resource"] == "*"
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "ECSBoot"}}
    other = group[0].plan({"metrics": {"namespace": "Team/Boot"}})
    (put,) = [s for s in _ecs_boot_policy(other)["Statement"]
              if "cloudwatch:PutMetricData" in s["Action"]]
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Team/Boot"}}
    values = other.planned_values()
    assert values['module.group.aws_cloudwatch_metric_alarm.event["abandon"]']["namespace"] == "Team/Boot"


def test_metrics_and_host_logs_turned_off(group):
    plan = group[0].plan({"metrics": {"enabled": False, "alarms": False}, "host_logs": False})
    acts = plan.actions()
    gone = {a for a, x in acts.items() if x == ["delete"]}
    assert 'module.group.aws_cloudwatch_metric_alarm.event["abandon"]' in gone
    assert "module.group.aws_iam_role_policy.host_logs[0]" in gone
    assert not any("cloudwatch:PutMetricData" in s["Action"]
                   for s in _ecs_boot_policy(plan)["Statement"])


def test_zy_a_failed_drain_stops_the_destroy_before_what_the_instances_drain_with(group,
                                                                                 moto_server):
    """Fail closed: when the drain cannot scale the group in, terraform destroy stops, and the
    group, its hooks, the role's policies, the capacity provider and the cluster all stay."""
    root, out = group
    moto_server.app.faults.add({
        "service": "autoscaling", "action": "UpdateAutoScalingGroup", "source": "client",
        "count": 1, "status": 400, "code": "ValidationError",
        "message": "injected: the drain cannot scale the group in"})
    try:
        with pytest.raises(TerraformError) as failed:
            root.destroy()
    finally:
        moto_server.app.faults.clear()
    assert "injected: the drain cannot scale the group in" in str(failed.value)
    left = inventory(moto_server)
    assert left["autoscaling:groups"] == [out["autoscaling_group_name"]]
    assert left["autoscaling:lifecycle_hooks"] == ["ecs-web-launch", "ecs-web-terminate"]
    assert left["ecs:clusters"] == [out["cluster_name"]]
    assert left["ecs:capacity_providers"] == [out["capacity_provider_name"]]
    assert sorted(moto_server.client("iam").list_role_policies(
        RoleName=out["iam_role_name"])["PolicyNames"]) == ["ecs-boot", "ecs-instance", "host-logs",
                                                    "ssm-instance"]
    # The drain stays in the state: the next destroy runs it again (test_zz).
    assert DRAIN in {r["address"] for r in _state_resources(root.state())}


def test_zz_group_destroy_drains_first_and_leaves_nothing_behind(group, moto_server):
    """The group's instance (min_size 1) goes through the terminate hook before the hook, the
    role's policies, the capacity provider and the cluster are deleted; a stand-in completes the
    hook as ecs-boot would (tests/test_fleet_e2e.py has ecs-boot itself drain)."""
    root, out = group
    asg = out["autoscaling_group_name"]
    (instance,) = [i["InstanceId"] for i in moto_server.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[asg])["AutoScalingGroups"][0]["Instances"]]
    moto_server.reset_calls()
    with StandInDrainer(moto_server, asg) as drainer:
        root.destroy()
    assert drainer.completed == [instance]
    order = DestroyOrder(moto_server.calls(), {
        "asg": asg, "terminate_hook": "ecs-web-terminate", "role_name": out["iam_role_name"],
        "cluster": out["cluster_name"]})
    completed = order.terminate_completed(instance)
    assert completed is not None and order.scaled_to_zero() < completed, order.summary()
    for what, index in order.deletions().items():
        assert index is not None and index > completed, (what, order.summary())
    assert inventory(moto_server) == {"ssm:parameters": sorted(AMI_PARAMETERS)}


def test_complete_example_two_groups_apply_replan_destroy(moto_server, tmp_path):
    """The complete example as shipped: a VPC, one cluster, on-demand and spot groups in it."""
    with managed_policies_loaded(moto_server):
        put_ami_parameters(moto_server)
        root = TerraformRoot.copy_of("examples/complete", tmp_path, moto_server.url)
        root.init()
        root.apply({"region": "us-east-1"})
        out = root.outputs()
        ecs = moto_server.client("ecs")
        (cluster,) = ecs.describe_clusters(clusters=[out["cluster_name"]])["clusters"]
        assert sorted(cluster["capacityProviders"]) == sorted(out["capacity_providers"]) == [
            "cp-ecs-boot-complete-od", "cp-ecs-boot-complete-spot"]
        groups = {g["AutoScalingGroupName"]: g for g in moto_server.client("autoscaling")
                  .describe_auto_scaling_groups()["AutoScalingGroups"]}
        assert "MixedInstancesPolicy" in groups["ecs-boot-complete-spot"]
        assert "MixedInstancesPolicy" not in groups["ecs-boot-complete-od"]
        for name in groups:
            config, _ = _user_data_config(moto_server, name)
            assert config["ecs"]["cluster"] == out["cluster_name"]

        plan = root.plan({"region": "us-east-1"})
        assert plan.exit_code == 0, plan.actions()

        root.destroy({"region": "us-east-1"})
        assert inventory(moto_server) == {"ssm:parameters": sorted(AMI_PARAMETERS)}


def test_minimal_example_applies_and_destroys(moto_server, tmp_path):
    """The minimal example as shipped, in a network made beforehand (as its README says)."""
    moto_server.reset()
    try:
        put_ami_parameters(moto_server)
        ec2 = moto_server.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.60.{i * 16}.0/20",
                                     AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
                   for i, az in enumerate("ab")]
        before = inventory(moto_server)
        root = TerraformRoot.copy_of("examples/minimal", tmp_path, moto_server.url)
        root.init()
        vars = {"region": "us-east-1", "vpc_id": vpc, "subnet_ids": subnets}
        root.apply(vars)
        out = root.outputs()
        assert out["cluster_name"] == "minimal"
        config, _ = _user_data_config(moto_server, out["autoscaling_group_name"])
        assert config["ecs"]["cluster"] == "minimal"
        root.destroy(vars)
        assert inventory(moto_server) == before
    finally:
        moto_server.reset()
