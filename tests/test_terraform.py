"""Checks of the Terraform module in terraform/ (issue 8).

No provider can be downloaded here, so `terraform init/validate/test` on the module cannot run.
Instead:
  * `terraform fmt -check -recursive terraform`;
  * checkov over terraform/ (zero failures; every skip carries a reason in the code);
  * the variable validations, run for real: variables.tf alone needs no provider, so
    `terraform plan` on a copy of it evaluates every validation rule against sample values;
  * structure tests that parse the HCL (python-hcl2) and assert what ecs-boot relies on;
  * a cross-check between the agent (src/**/*.rs) and the module: AWS actions, tags and hooks.

Each check skips with the reason when its tool (terraform, checkov, python-hcl2, botocore) is
missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TF = REPO / "terraform"
SRC = REPO / "src"
CONTRACT = REPO / "docs" / "contract.md"

try:
    import hcl2
except ImportError:  # only the tests that parse HCL need it
    hcl2 = None

# Offline and quiet: no version checkpoint call, no CLI config needed.
TF_ENV = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": os.devnull}


def terraform_bin() -> str:
    path = shutil.which("terraform")
    if path is None:
        pytest.skip("terraform is not installed (https://developer.hashicorp.com/terraform/install)")
    return path


# --------------------------------------------------------------------------------------------
# HCL parsing
# --------------------------------------------------------------------------------------------


def _unquote(s: str) -> str:
    # python-hcl2 >= 5 keeps the quotes of string literals and block labels; older ones do not.
    return s[1:-1] if len(s) >= 2 and s[0] == '"' and s[-1] == '"' else s


def _norm(v):
    if isinstance(v, dict):
        # Drop the parser's bookkeeping (__is_block__, __comments__ ...).
        return {_unquote(k): _norm(x) for k, x in v.items() if not k.startswith("__")}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    if isinstance(v, str):
        return _unquote(v)
    return v


def parse_dir(d: Path) -> dict:
    """Merges the top-level blocks of every .tf file of one module: {"resource": {type: {name: body}}, ...}."""
    if hcl2 is None or not hasattr(hcl2, "load"):
        pytest.skip("python-hcl2 is not installed (pip install python-hcl2; checkov's bc-python-hcl2 must not shadow it)")
    out: dict = {"resource": {}, "data": {}, "variable": {}, "output": {}, "locals": {}, "module": {}, "terraform": []}
    for f in sorted(d.glob("*.tf")):
        with f.open() as fh:
            doc = _norm(hcl2.load(fh))
        for kind in ("resource", "data"):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    out[kind].setdefault(rtype, {}).update(named)
        for kind in ("variable", "output", "module"):
            for block in doc.get(kind, []):
                out[kind].update(block)
        for block in doc.get("locals", []):
            out["locals"].update(block)
        out["terraform"].extend(doc.get("terraform", []))
    return out


@pytest.fixture(scope="module")
def mod() -> dict:
    return parse_dir(TF)


def one(v):
    """A nested block parses as a list of bodies; most appear once."""
    if isinstance(v, list):
        assert len(v) == 1, v
        return v[0]
    return v


def squash(v) -> str:
    """An expression without whitespace, so checks do not depend on the parser's spacing."""
    return re.sub(r"\s+", "", str(v))


# --------------------------------------------------------------------------------------------
# terraform fmt and checkov
# --------------------------------------------------------------------------------------------


def test_terraform_fmt():
    tf = terraform_bin()
    r = subprocess.run([tf, "fmt", "-check", "-recursive", "-diff", "terraform"], cwd=REPO, env=TF_ENV,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"terraform fmt would change:\n{r.stdout}{r.stderr}"


def _checkov_bin() -> str:
    path = os.environ.get("CHECKOV") or shutil.which("checkov")
    if not path:
        pytest.skip("checkov is not installed; install it in its own venv (see tests/requirements.txt: it would "
                    "overwrite python-hcl2's hcl2 module) and put it on PATH or set CHECKOV")
    return path


def test_checkov_has_no_failures():
    checkov = _checkov_bin()
    r = subprocess.run([checkov, "--config-file", str(TF / ".checkov.yaml"), "-d", str(TF), "-o", "json"],
                       cwd=TF, capture_output=True, text=True, timeout=180,
                       env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_PROGRESS": "1"})
    assert r.returncode in (0, 1), f"checkov crashed ({r.returncode}):\n{r.stderr[-3000:]}"
    report = json.loads(r.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for rep in reports for c in rep.get("results", {}).get("failed_checks", [])]
    assert not failed, "checkov failures:\n" + "\n".join(
        f"{c['check_id']} {c['resource']} {c['file_path']}:{c['file_line_range']} {c.get('check_name', '')}" for c in failed)
    skipped = [c for rep in reports for c in rep.get("results", {}).get("skipped_checks", [])]
    for c in skipped:
        reason = (c.get("check_result", {}) or {}).get("suppress_comment", "")
        assert reason and reason.strip() and reason != "No comment provided", f"{c['check_id']} skipped without a reason"
    passed = sum(rep.get("summary", {}).get("passed", 0) for rep in reports)
    assert passed > 50, "checkov evaluated suspiciously few checks"


def test_every_checkov_skip_in_code_has_a_reason():
    for f in TF.rglob("*.tf"):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if "checkov:skip" in line:
                m = re.search(r"checkov:skip=(CKV2?_[A-Z0-9]+_\d+):(.*)$", line)
                assert m and len(m.group(2).strip()) >= 10, f"{f}:{n}: skip without a reason: {line.strip()}"


# --------------------------------------------------------------------------------------------
# Variable validations, evaluated by terraform itself
# --------------------------------------------------------------------------------------------

REQUIRED_VARS = {"name": "web", "subnet_ids": ["subnet-1", "subnet-2"], "vpc_id": "vpc-1", "ami_id": "ami-0123456789abcdef0"}


@pytest.fixture(scope="module")
def vars_only(tmp_path_factory) -> tuple[str, Path]:
    tf = terraform_bin()
    d = tmp_path_factory.mktemp("tfvars")
    shutil.copy(TF / "variables.tf", d / "variables.tf")
    r = subprocess.run([tf, "init", "-backend=false", "-input=false", "-no-color"], cwd=d, env=TF_ENV,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return tf, d


def plan_vars(vars_only, overrides: dict) -> subprocess.CompletedProcess:
    tf, d = vars_only
    (d / "case.tfvars.json").write_text(json.dumps({**REQUIRED_VARS, **overrides}))
    return subprocess.run([tf, "plan", "-input=false", "-lock=false", "-no-color", "-var-file=case.tfvars.json"],
                          cwd=d, env=TF_ENV, capture_output=True, text=True, timeout=60)


GOOD = [
    {},
    {"fragment_locations": ["s3://cfg-bucket/ecs-boot/web/", "ssm:/ecs-boot/web/"], "registry_auth_locations": ["ssm:/ecs-boot/"]},
    {"mixed_instances": {"instance_types": ["m5.large", "m6i.large"], "on_demand_percentage_above_base_capacity": 0}},
    {"warm_pool": {"pool_state": "Stopped", "min_size": 1}},
    {"drain_deadline": 1800, "terminate_hook": {"heartbeat_timeout": 3600}},
    {"architecture": "arm64", "ami_id": None},
    {"capacity_provider_name": "web-spot"},
    {"tags": {"team": "web", "cost-center": "a.b:c@d"}},
    {"agent_settings": {"ECS_IMAGE_PULL_BEHAVIOR": "prefer-cached", "ECS_CONTAINER_STOP_TIMEOUT": "2m"}},
    {"instance_attributes": {"stack": "blue", "tier_1.x": "y"}},
    {"registry_auth": "s3://creds-bucket/ecs/auth.json", "config_location": "ssm:/ecs-boot/web/config"},
    {"launch_hook": {"heartbeat_timeout": 900}, "terminate_hook": {"default_result": "CONTINUE"}, "drainer": "ecs-managed"},
    {"imds_hop_limit": 2},
    {"recorder_location": "s3://evidence-bucket/ecs-boot/web/"},
]

BAD = {
    "tag key with a space": {"tags": {"cost center": "x"}},
    "tag key with a slash": {"tags": {"k8s.io/cluster-autoscaler/enabled": "true"}},
    "tag key _index": {"tags": {"_index": "x"}},
    "attribute name with a slash": {"instance_attributes": {"a/b": "x"}},
    "attribute value with a newline": {"instance_attributes": {"a": "x\nECS_ENGINE_AUTH_DATA=y"}},
    "engine auth from tags": {"agent_settings": {"ECS_ENGINE_AUTH_DATA": "{}"}},
    "task IAM role from tags": {"agent_settings": {"ECS_ENABLE_TASK_IAM_ROLE": "false"}},
    "task IAM role host net from tags": {"agent_settings": {"ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST": "true"}},
    "privileged from tags": {"agent_settings": {"ECS_DISABLE_PRIVILEGED": "false"}},
    "selinux from tags": {"agent_settings": {"ECS_SELINUX_CAPABLE": "true"}},
    "datadir from tags": {"agent_settings": {"ECS_DATADIR": "/tmp"}},
    "logfile from tags": {"agent_settings": {"ECS_LOGFILE": "/tmp/x"}},
    "IMDS block from tags": {"agent_settings": {"ECS_AWSVPC_BLOCK_IMDS": "false"}},
    "cluster from settings": {"agent_settings": {"ECS_CLUSTER": "other"}},
    "setting with a newline": {"agent_settings": {"ECS_LOGLEVEL": "info\nECS_DISABLE_PRIVILEGED=false"}},
    "hop limit 0": {"imds_hop_limit": 0},
    "registry auth over http": {"registry_auth": "https://example.com/auth.json"},
    "config with a bad scheme": {"config_location": "file:///etc/x"},
    "ECS's own hook name": {"terminate_hook": {"name": "ecs-managed-draining-termination-hook"}},
    "heartbeat too short": {"launch_hook": {"heartbeat_timeout": 10}},
    "unknown drainer": {"drainer": "both"},
    "no subnets": {"subnet_ids": []},
    "retention CloudWatch refuses": {"log_retention_days": 42},
    "capacity provider name AWS refuses": {"capacity_provider_name": "ecs-web"},
    "capacity provider name AWS refuses (case)": {"capacity_provider_name": "FargateWeb"},
    "warm pool reusing instances": {"warm_pool": {"reuse_on_scale_in": True}},
    "warm pool state": {"warm_pool": {"pool_state": "Sleeping"}},
    "drain deadline beyond the hook limit": {"drain_deadline": 7200},
    "drain deadline too short": {"drain_deadline": 10},
    "fragment prefix without trailing slash": {"fragment_locations": ["s3://cfg-bucket/ecs-boot"]},
    "registry prefix with another scheme": {"registry_auth_locations": ["https://example.com/"]},
    "architecture": {"architecture": "i386"},
    "mixed instances without types": {"mixed_instances": {"instance_types": []}},
    "recorder prefix without trailing slash": {"recorder_location": "s3://evidence-bucket/web"},
    "recorder outside S3": {"recorder_location": "ssm:/ecs-boot/evidence/"},
}


@pytest.mark.parametrize("overrides", GOOD, ids=[json.dumps(g)[:60] for g in GOOD])
def test_variables_accept(vars_only, overrides):
    r = plan_vars(vars_only, overrides)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("case", sorted(BAD))
def test_variables_reject(vars_only, case):
    r = plan_vars(vars_only, BAD[case])
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"{case}: accepted\n{out}"
    assert "Invalid value for variable" in out, f"{case}: failed for another reason:\n{out}"


# --------------------------------------------------------------------------------------------
# Layout and documentation
# --------------------------------------------------------------------------------------------


def test_standard_layout():
    for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "iam.tf", "hooks.tf", "user_data.tf", "README.md",
              ".checkov.yaml"):
        assert (TF / f).is_file(), f"terraform/{f} missing"
    for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (TF / "modules" / "cluster" / f).is_file(), f"terraform/modules/cluster/{f} missing"
    for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (TF / "modules" / "network" / f).is_file(), f"terraform/modules/network/{f} missing"
    for ex in ("complete", "minimal"):
        for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
            assert (TF / "examples" / ex / f).is_file(), f"terraform/examples/{ex}/{f} missing"


def test_variables_and_outputs_are_typed_documented_and_in_the_readme(mod):
    readme = (TF / "README.md").read_text()
    for name, body in mod["variable"].items():
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("type"), f"variable {name} has no type"
        assert re.search(rf"^\|\s*`?{re.escape(name)}`?\s*\|", readme, re.M), f"variable {name} missing from the README inputs table"
    for name, body in mod["output"].items():
        assert body.get("description"), f"output {name} has no description"
        assert re.search(rf"^\|\s*`?{re.escape(name)}`?\s*\|", readme, re.M), f"output {name} missing from the README outputs table"


def test_outputs_cover_what_users_wire_up(mod):
    want = {"autoscaling_group_name", "autoscaling_group_arn", "cluster_name", "cluster_arn", "iam_role_name",
            "iam_role_arn", "instance_profile_arn", "security_group_id", "log_group_name", "task_failure_topic_arn",
            "capacity_provider_name"}
    assert want <= set(mod["output"]), want - set(mod["output"])


def test_examples(mod):
    complete = parse_dir(TF / "examples" / "complete")
    groups = {k: v for k, v in complete["module"].items() if one(v["source"]) == "../../"}
    assert set(groups) == {"on_demand", "spot"}, "two groups in one cluster"
    assert one(complete["module"]["cluster"]["source"]) == "../../modules/cluster"
    for g in groups.values():
        assert g["create_cluster"] is False and g["cluster_name"] == "${module.cluster.name}"
    assert "mixed_instances" in groups["spot"] and "mixed_instances" not in groups["on_demand"]
    # The VPC comes from modules/network, in complete and platform alike.
    network = parse_dir(TF / "modules" / "network")
    res = network["resource"]
    assert {"aws_vpc", "aws_subnet", "aws_nat_gateway", "aws_internet_gateway", "aws_route_table"} <= set(res)
    assert set(res["aws_subnet"]) == {"public", "private"}
    for subnet in res["aws_subnet"].values():
        assert "local.az_count" in str(subnet["count"])
    assert ">= 2" in str(network["variable"]["availability_zones"]["validation"]), "the VPC must span at least two AZs"
    # Instances launch only into subnets whose route table, with its NAT route inline, is associated.
    assert "route" in res["aws_route_table"]["private"], "the private default route must be inline"
    assert "aws_route_table_association.private[*].subnet_id" in str(network["output"]["private_subnet_ids"]["value"])
    assert "aws_vpc" not in complete["resource"]
    assert one(complete["module"]["network"]["source"]) == "../../modules/network"
    assert "module.network.private_subnet_ids" in str(groups["on_demand"]["subnet_ids"])

    # A deployment applied before modules/network keeps its network: every resource of the module
    # is moved there from the example's old address (same type and name).
    for ex in ("complete", "platform"):
        with (TF / "examples" / ex / "moved.tf").open() as fh:
            moves = _norm(hcl2.load(fh))["moved"]
        pairs = {(m["from"].strip("${}"), m["to"].strip("${}")) for m in moves}
        assert pairs == {(f"{t}.{n}", f"module.network.{t}.{n}") for t, named in res.items() for n in named}, ex

    minimal = parse_dir(TF / "examples" / "minimal")
    assert "aws_vpc" not in minimal["resource"], "the minimal example takes existing subnets"
    assert "var.subnet_ids" in str(minimal["module"]["ecs_boot"]["subnet_ids"])
    # Whatever an example passes must be a module input.
    for call in [*groups.values(), minimal["module"]["ecs_boot"]]:
        passed = set(call) - {"source", "depends_on", "version", "providers"}
        assert passed <= set(mod["variable"]), passed - set(mod["variable"])


# --------------------------------------------------------------------------------------------
# What ecs-boot relies on
# --------------------------------------------------------------------------------------------


def test_launch_template_imds_ebs_ssh(mod):
    lt = mod["resource"]["aws_launch_template"]["this"]
    md = one(lt["metadata_options"])
    assert md["http_tokens"] == "required"
    assert md["http_endpoint"] == "enabled"
    assert md["instance_metadata_tags"] == "enabled"
    assert md["http_put_response_hop_limit"] == "${var.imds_hop_limit}"
    assert mod["variable"]["imds_hop_limit"]["default"] == 1
    ebs = one(one(lt["block_device_mappings"])["ebs"])
    assert ebs["encrypted"] is True
    assert lt["key_name"] == "${var.key_name}" and mod["variable"]["key_name"]["default"] is None
    assert "var.ami_id" in lt["image_id"] or "local.ami_id" in lt["image_id"]
    assert "aws_ssm_parameter" in mod["data"], "the AMI id may come from an SSM parameter"


def test_asg_hooks_are_separate_resources(mod):
    asg = mod["resource"]["aws_autoscaling_group"]["this"]
    dyn = {k: v for d in asg.get("dynamic", []) for k, v in d.items()}
    # initial_lifecycle_hook is ForceNew: any hook change would replace the group, undrained.
    assert "initial_lifecycle_hook" not in dyn and "initial_lifecycle_hook" not in asg
    hooks = mod["resource"]["aws_autoscaling_lifecycle_hook"]
    assert hooks["launch"]["lifecycle_transition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    assert hooks["terminate"]["lifecycle_transition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hooks["terminate"]["heartbeat_timeout"] == "${local.terminate_heartbeat_timeout}"
    assert mod["variable"]["min_size"]["default"] == 0, "created empty, so no instance misses the hooks"
    assert mod["locals"]["launch_hook_name"] == '${coalesce(var.launch_hook.name, "${var.name}-launch")}'
    hooks = mod["locals"]
    assert hooks["terminate_hook_name"] == '${coalesce(var.terminate_hook.name, "${var.name}-terminate")}'
    v = mod["variable"]
    assert "ABANDON" in str(v["launch_hook"]["type"]) and "CONTINUE" in str(v["terminate_hook"]["type"])


def test_destroy_drains_before_the_hooks_permissions_and_cluster_go(mod):
    """terraform destroy deletes the hook resources before the group (they depend on it), so a
    resource depending on the hooks drains the group first (terraform/destroy.tf)."""
    drain = mod["resource"]["terraform_data"]["drain_on_destroy"]
    assert mod["locals"]["drain_on_destroy"] == "${var.drain_on_destroy && !var.force_delete}"
    assert drain["count"] == "${local.drain_on_destroy ? 1 : 0}"
    assert mod["variable"]["drain_on_destroy"]["default"] is True
    assert {"${aws_autoscaling_lifecycle_hook.launch}", "${aws_autoscaling_lifecycle_hook.terminate}",
            "${aws_ecs_capacity_provider.this}"} <= set(drain["depends_on"])
    assert drain["input"]["group"] == "${aws_autoscaling_group.this.name}"
    # input updates in place; triggers_replace would replace it and so run the drain mid-apply.
    assert "triggers_replace" not in drain
    # One deadline: the group's delete timeout.
    assert drain["input"]["timeout"] == "${local.delete_timeout_seconds}"
    assert mod["locals"]["delete_timeout"] == "${local.delete_timeout_seconds}s"
    (provisioner,) = drain["provisioner"]
    local_exec = provisioner["local-exec"]
    assert local_exec["when"] == "destroy" and "on_failure" not in local_exec, \
        "a failed drain must stop the destroy (on_failure = fail, the default)"
    assert drain["input"]["script"] == "${path.module}/scripts/drain-group.sh"
    assert (TF / "scripts" / "drain-group.sh").is_file()


def test_one_drainer_only(mod):
    assert mod["locals"]["terminate_hook_enabled"] == '${var.drainer == "ecs-boot"}'
    cp = one(mod["resource"]["aws_ecs_capacity_provider"]["this"]["auto_scaling_group_provider"])
    assert cp["managed_draining"] == '${var.drainer == "ecs-managed" ? "ENABLED" : "DISABLED"}'
    assert mod["resource"]["aws_autoscaling_lifecycle_hook"]["terminate"]["count"] == "${local.terminate_hook_enabled ? 1 : 0}"
    # ecs-boot learns its terminate hook only with its own hook, and its drain is off otherwise.
    sections = squash(mod["locals"]["config_sections"])
    assert 'local.terminate_hook_enabled?["terminate_hook=' in sections
    assert 'var.drainer=="ecs-managed"?["enabled=false"]' in sections


def test_capacity_provider_and_refresh(mod):
    asg = mod["resource"]["aws_autoscaling_group"]["this"]
    assert asg["protect_from_scale_in"] == "${var.managed_termination_protection}"
    assert asg["force_delete"] == "${var.force_delete}" and mod["variable"]["force_delete"]["default"] is False
    assert one(asg["timeouts"])["delete"] == "${local.delete_timeout}"
    prefs = one(one(asg["instance_refresh"])["preferences"])
    assert prefs["scale_in_protected_instances"] == '${var.managed_termination_protection ? "Refresh" : "Ignore"}'
    cp = one(mod["resource"]["aws_ecs_capacity_provider"]["this"]["auto_scaling_group_provider"])
    assert cp["managed_termination_protection"] == '${var.managed_termination_protection ? "ENABLED" : "DISABLED"}'
    assert one(cp["managed_scaling"])["status"] == "ENABLED"
    assert mod["locals"]["ecs_managed_tag"] == {"AmazonECSManaged": "true"}
    assert "local.ecs_managed_tag" in str(mod["locals"]["asg_tags"])
    assert "${aws_autoscaling_group.this.arn}" == cp["auto_scaling_group_arn"]


def test_tags_propagate_at_launch(mod):
    asg = mod["resource"]["aws_autoscaling_group"]["this"]
    dyn = {k: v for d in asg.get("dynamic", []) for k, v in d.items()}
    assert dyn["tag"]["for_each"] == "${local.asg_tags}"
    assert one(dyn["tag"]["content"])["propagate_at_launch"] is True
    assert "tag" not in asg, "static tag blocks bypass the metadata-key precondition"
    assert "local.placement_tags" in str(mod["locals"]["asg_tags"])


def test_security_group_has_no_ingress_by_default(mod):
    sg = mod["resource"]["aws_security_group"]["this"]
    assert "ingress" not in sg and "egress" not in sg
    assert mod["variable"]["ingress_rules"]["default"] == {}
    assert "aws_security_group_rule" not in mod["resource"]


def test_logs_and_task_failure_alerts(mod):
    lg = mod["resource"]["aws_cloudwatch_log_group"]["this"]
    assert lg["retention_in_days"] == "${var.log_retention_days}"
    rule = mod["resource"]["aws_cloudwatch_event_rule"]["task_failed"]
    pattern = rule["event_pattern"]
    for needle in ('"ECS Task State Change"', '"STOPPED"', "stopCode", "local.alert_stop_codes", "local.cluster_arn"):
        assert needle in pattern, needle
    assert mod["locals"]["alert_stop_codes"] == ["EssentialContainerExited", "TaskFailedToStart"]
    for name in ("task_failed", "refresh_failed"):
        target = mod["resource"]["aws_cloudwatch_event_target"][name]
        assert target["arn"] == "${aws_sns_topic.task_failures.arn}"
    policy = mod["data"]["aws_iam_policy_document"]["task_failures_topic"]
    by_sid = {st["sid"]: st for st in policy["statement"]}
    assert set(by_sid) == {"OnlyThisRulePublishes", "OnlyThisGroupsAlarmsPublish"}
    cond = one(by_sid["OnlyThisRulePublishes"]["condition"])
    assert cond["variable"] == "aws:SourceArn"
    assert "local.refresh_failure_rule_arn" in str(cond["values"])
    # The alarms publish too, but only alarms named after this group.
    alarms = by_sid["OnlyThisGroupsAlarmsPublish"]
    assert one(alarms["principals"])["identifiers"] == ["cloudwatch.amazonaws.com"]
    cond = one(alarms["condition"])
    assert (cond["test"], cond["variable"]) == ("ArnLike", "aws:SourceArn")
    assert str(cond["values"]).endswith(":alarm:${var.name}-*']"), cond["values"]


def test_cluster_and_container_insights(mod):
    assert mod["module"]["cluster"]["count"] == "${var.create_cluster ? 1 : 0}"
    assert "aws_ecs_cluster" not in mod["resource"] and "aws_ecs_cluster_capacity_providers" not in mod["resource"]
    cluster_mod = parse_dir(TF / "modules" / "cluster")
    cluster = cluster_mod["resource"]["aws_ecs_cluster"]["this"]
    assert "aws_ecs_cluster_capacity_providers" in cluster_mod["resource"], "the association is owned here, once"
    setting = one(cluster["setting"])
    assert setting["name"] == "containerInsights" and setting["value"] == "${var.container_insights}"
    assert mod["module"]["cluster"]["container_insights"] == "${var.container_insights}"


# --------------------------------------------------------------------------------------------
# IAM: the inline policy, statement by statement
# --------------------------------------------------------------------------------------------


def policy_statements(mod) -> list[dict]:
    doc = mod["data"]["aws_iam_policy_document"]["ecs_boot"]
    stmts = list(doc.get("statement", []))
    for d in doc.get("dynamic", []):
        for name, body in d.items():
            assert name == "statement"
            stmts.extend(body["content"])
    return stmts


def inline_actions(mod) -> set[str]:
    return {a for s in policy_statements(mod) for a in s["actions"]}


def test_no_broad_managed_policies_attached(mod):
    # Copies without the unscoped actions instead (tests/test_terraform_apply.py diffs them
    # against the managed documents).
    assert "aws_iam_role_policy_attachment" not in mod["resource"]
    assert "aws_iam_policy_attachment" not in mod["resource"], "exclusive attachments detach other users' roles"
    assert set(mod["resource"]["aws_iam_role_policy"]) == {"ecs_instance", "ssm_instance", "ecs_boot",
                                                           "host_logs"}


def test_inline_policy_is_scoped(mod):
    by_action = {}
    for s in policy_statements(mod):
        assert s.get("effect", "Allow") == "Allow"
        for a in s["actions"]:
            assert "*" not in a, f"wildcard action {a}"
            assert a not in by_action, f"{a} in two statements"
            by_action[a] = s

    for a in ("autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"):
        assert by_action[a]["resources"] == ["${local.asg_arn_pattern}"]
    assert "autoScalingGroupName/${var.name}" in mod["locals"]["asg_arn_pattern"]

    for a, s in by_action.items():
        if s["resources"] == ["*"]:
            ok_describe = a.startswith("autoscaling:Describe")
            ok_cluster = a.startswith("ecs:") and any(
                c["variable"] == "ecs:cluster" and c["values"] == ["${local.cluster_arn}"] for c in s.get("condition", []))
            # PutMetricData has no resource: its namespace is the only scope there is.
            ok_namespace = a == "cloudwatch:PutMetricData" and [
                (c["test"], c["variable"], c["values"]) for c in s.get("condition", [])
            ] == [("StringEquals", "cloudwatch:namespace", ["${var.metrics.namespace}"])]
            assert ok_describe or ok_cluster or ok_namespace, f"{a} on * without a scoping condition"

    ecs = [a for a in by_action if a.startswith("ecs:")]
    assert ecs and all(by_action[a].get("condition") for a in ecs)

    assert by_action["s3:GetObject"]["resources"] == "${local.s3_object_arns}"
    assert by_action["ssm:GetParameter"]["resources"] == "${local.ssm_parameter_arns}"
    s3_arns, ssm_arns = mod["locals"]["s3_object_arns"], mod["locals"]["ssm_parameter_arns"]
    assert "local.ecs_boot_locations" in s3_arns and "local.ecs_boot_locations" in ssm_arns
    assert "var.registry_auth" in mod["locals"]["ecs_boot_locations"] and "var.config_location" in mod["locals"]["ecs_boot_locations"]

    # The flight recorder writes under its prefix only, and may not read, list or delete there.
    put = by_action["s3:PutObject"]
    assert put["actions"] == ["s3:PutObject"]
    assert len(put["resources"]) == 1 and "var.recorder_location" in put["resources"][0]
    assert put["resources"][0].endswith('"s3://")}*')

    kms = by_action["kms:Decrypt"]
    assert [c["variable"] for c in kms["condition"]] == ["kms:ViaService"]


def test_host_logs_policy_is_the_log_group_only(mod):
    doc = mod["data"]["aws_iam_policy_document"]["host_logs"]
    st = one(doc["statement"])
    assert sorted(st["actions"]) == ["logs:CreateLogStream", "logs:DescribeLogStreams",
                                     "logs:PutLogEvents"]
    assert st["resources"] == ["${local.log_group_arn}", "${local.log_group_arn}:log-stream:*"]
    assert mod["resource"]["aws_iam_role_policy"]["host_logs"]["count"] == "${var.host_logs ? 1 : 0}"


def test_alarms_watch_what_ecs_boot_and_the_cloudwatch_agent_publish(mod):
    from pathlib import Path as _P
    alarms = mod["resource"]["aws_cloudwatch_metric_alarm"]
    assert set(alarms) == {"event", "boot_duration", "host"}
    host = mod["locals"]["host_alarms"]
    assert "disk_used_percent" in str(host) and "mem_available_percent" in str(host)
    event_metrics = {k: v["metric"] for k, v in mod["locals"]["event_alarms"].items()}
    assert event_metrics == {"abandon": "Abandons", "drain-deadline": "DrainDeadlineHit",
                             "essential-container": "EssentialContainerFailures"}
    assert alarms["boot_duration"]["metric_name"] == "BootDuration"
    assert alarms["boot_duration"]["extended_statistic"] == "p90"
    # The names ecs-boot publishes (src/metrics/catalog.rs) are the ones the alarms watch.
    catalog = rust_code(SRC / "metrics" / "catalog.rs")
    for name in [*event_metrics.values(), "BootDuration"]:
        assert f'"{name}"' in catalog, name
    agent = rust_code(SRC / "metrics" / "agent_config.rs")
    for name in ("used_percent", "mem_available_percent", '"/var/lib/docker"'):
        assert name in agent, name
    for a in alarms.values():
        assert a["alarm_actions"] == "${local.alarm_actions}"
        assert a["treat_missing_data"] == "notBreaching"


# --------------------------------------------------------------------------------------------
# Cross-check: the agent's code against the module
# --------------------------------------------------------------------------------------------

SDK_SERVICES = {"autoscaling": "autoscaling", "ecs": "ecs", "s3": "s3", "ssm": "ssm", "ecr": "ecr"}  # botocore -> IAM prefix
# Where the IAM action is not the operation name.
IAM_ACTION_FOR = {"s3:HeadObject": "s3:GetObject", "s3:ListObjectsV2": "s3:ListBucket", "s3:ListObjects": "s3:ListBucket"}
# Called by ecs-boot but granted by an attached AWS managed policy, so not repeated inline.
GRANTED_BY_MANAGED_POLICY = {
    "ecr:GetAuthorizationToken": "the copy of AmazonEC2ContainerServiceforEC2Role (ecr:GetAuthorizationToken on *)",
}
# In the inline policy though ecs-boot never calls it: S3 and SSM call KMS on its behalf.
IMPLIED_BY_OTHER_CALLS = {"kms:Decrypt": "SSE-KMS objects and SecureString parameters"}


def rust_code(path: Path) -> str:
    """The file without its inline test module and without comments. Only an inline module
    (`#[cfg(test)] mod tests { ... }`, at the end by convention) is cut: a test-only declaration
    such as `#[cfg(test)] pub mod fake;` may come before the code that matters."""
    text = path.read_text()
    inline = re.search(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text)
    if inline:
        text = text[:inline.start()]
    return re.sub(r"//[^\n]*", "", text)


# `ecs-boot-fleet` (src/bin, src/fleet) and `ecs-boot preflight --asg` (src/cli/preflight.rs) run
# on an operator's machine with the operator's credentials, never with the instance role, so
# their calls are not the module's to allow.
OPERATOR_ONLY = ("fleet", "bin", "cli/preflight.rs")


# `#[cfg(test)]` (other attributes may follow) then `mod name;`: a module compiled for tests only.
TEST_ONLY_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")


def cfg_test_files(files: list[Path]) -> set[Path]:
    """Files (or module folders) declared behind `#[cfg(test)]`: fakes and tests, never shipped."""
    out: set[Path] = set()
    for f in files:
        child_dir = f.parent if f.name in ("mod.rs", "lib.rs", "main.rs") else f.parent / f.stem
        for name in TEST_ONLY_MOD.findall(f.read_text()):
            out |= {child_dir / f"{name}.rs", child_dir / name}
    return out


def rust_sources() -> list[Path]:
    """The shipped agent's sources: operator-only parts and test-only modules left out."""
    if not SRC.is_dir():
        return []
    files = sorted(SRC.rglob("*.rs"))
    test_only = cfg_test_files(files)
    return [p for p in files
            if p.relative_to(SRC).parts[0] not in OPERATOR_ONLY
            and p.relative_to(SRC).as_posix() not in OPERATOR_ONLY
            and not any(t == p or t in p.parents for t in test_only)]


def sdk_operations() -> dict[str, set[str]]:
    """snake_case method -> {"service:OperationName"} from the installed botocore models."""
    botocore_loaders = pytest.importorskip("botocore.loaders", reason="botocore is not installed")
    from botocore import xform_name

    loader = botocore_loaders.create_loader()
    ops: dict[str, set[str]] = {}
    for svc, prefix in SDK_SERVICES.items():
        model = loader.load_service_model(svc, "service-2")
        for op in model["operations"]:
            # Same rule as smithy-rs's fluent client: GetObject -> get_object.
            action = f"{prefix}:{op}"
            ops.setdefault(xform_name(op), set()).add(IAM_ACTION_FOR.get(action, action))
    return ops


def agent_actions() -> dict[str, set[str]]:
    """IAM action -> files calling it, from `.op()` fluent-builder calls in src/."""
    ops = sdk_operations()
    found: dict[str, set[str]] = {}
    pattern = re.compile(r"\.([a-z][a-z0-9_]*)\(\s*\)")
    for f in rust_sources():
        for m in pattern.finditer(rust_code(f)):
            for action in ops.get(m.group(1), ()):
                found.setdefault(action, set()).add(str(f.relative_to(REPO)))
    return found


def contract_actions() -> set[str]:
    text = CONTRACT.read_text()
    section = text.split("## AWS calls the agent makes", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"\b([a-z0-9]+:[A-Z][A-Za-z0-9]+)\b", section))


def test_policy_matches_the_contract(mod):
    expected = contract_actions() - set(GRANTED_BY_MANAGED_POLICY)
    got = inline_actions(mod) - set(IMPLIED_BY_OTHER_CALLS)
    assert got == expected, f"missing {sorted(expected - got)}, extra {sorted(got - expected)}"


def test_every_agent_call_is_allowed(mod):
    called = agent_actions()
    if not called:
        pytest.skip("src/ makes no AWS SDK calls yet")
    allowed = inline_actions(mod) | set(GRANTED_BY_MANAGED_POLICY)
    missing = {a: sorted(files) for a, files in called.items() if a not in allowed}
    assert not missing, f"ecs-boot calls actions the module's role does not allow: {missing}"


# Called by ecs-boot without an SDK client (no fluent `.op()` to find): action -> the file and
# the Query action name it must contain.
CALLED_BY_HAND = {"cloudwatch:PutMetricData": ("src/metrics/query.rs", '"PutMetricData"')}


def hand_rolled_actions() -> set[str]:
    return {a for a, (f, needle) in CALLED_BY_HAND.items() if needle in rust_code(REPO / f)}


def test_hand_rolled_calls_are_there():
    assert hand_rolled_actions() == set(CALLED_BY_HAND)


def test_policy_allows_nothing_the_agent_does_not_call(mod):
    """Per service: once src/ calls that service at all, the policy must hold exactly its calls."""
    called = set(agent_actions()) | hand_rolled_actions()
    inline = inline_actions(mod) - set(IMPLIED_BY_OTHER_CALLS)
    unused, not_yet = [], []
    for prefix in sorted({a.split(":")[0] for a in inline}):
        svc_called = {a for a in called if a.startswith(prefix + ":")}
        svc_inline = {a for a in inline if a.startswith(prefix + ":")}
        if not svc_called:
            not_yet.append(prefix)
            continue
        unused.extend(sorted(svc_inline - svc_called))
    assert not unused, f"the policy allows actions ecs-boot never calls: {unused}"
    if not_yet:
        pytest.skip(f"src/ does not call {', '.join(not_yet)} yet; compared the other services only")


RUST_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
TAG_IN_STRING = re.compile(r"ecs-boot:[a-z]+(?:-[a-z]+)*:?")


def module_tag_keys(mod) -> set[str]:
    """Tag keys (exact, or a prefix ending in ':') the module can set on instances."""
    return set(TAG_IN_STRING.findall(mod["locals"]["placement_tags"]))


# What the module writes to the trusted channel (user data, [section] key) instead of a tag.
TAG_TO_USER_DATA = {
    "ecs-boot:cluster": ("ecs", "cluster"),
    "ecs-boot:registry-auth": ("ecs", "registry_auth"),
    "ecs-boot:launch-hook": ("lifecycle", "launch_hook"),
    "ecs-boot:terminate-hook": ("lifecycle", "terminate_hook"),
    "ecs-boot:setting:": ("ecs.settings", ""),
}
# Not needed from the module at all: ecs-boot falls back to aws:autoscaling:groupName.
TAG_NOT_NEEDED = {"ecs-boot:asg"}


def test_module_tags_only_place_instances(mod):
    contract = set(TAG_IN_STRING.findall(CONTRACT.read_text().split("## Tags the agent reads", 1)[1].split("\n## ", 1)[0]))
    assert module_tag_keys(mod) == {"ecs-boot:attribute:", "ecs-boot:config"}
    assert module_tag_keys(mod) <= contract
    assert set(TAG_TO_USER_DATA) | TAG_NOT_NEEDED | module_tag_keys(mod) >= contract, "a contract tag the module neither sets nor replaces"


def test_every_tag_the_agent_reads_is_set_by_the_module(mod):
    in_code: dict[str, set[str]] = {}
    for f in rust_sources():
        for lit in RUST_STRING.findall(rust_code(f)):
            for tag in TAG_IN_STRING.findall(lit):
                in_code.setdefault(tag, set()).add(str(f.relative_to(REPO)))
    if not in_code:
        pytest.skip("src/ names no ecs-boot:* tags yet")
    sections = mod["locals"]["config_sections"]
    for tag, (section, key) in TAG_TO_USER_DATA.items():
        assert section in sections and f"{key} =" in str(sections[section]), f"user data does not replace {tag}"
    known = module_tag_keys(mod) | set(TAG_TO_USER_DATA) | TAG_NOT_NEEDED
    unknown = {t: sorted(fs) for t, fs in in_code.items() if t not in known}
    assert not unknown, f"ecs-boot reads tags the module neither sets nor replaces through user data: {unknown}"


def test_agent_settings_allowlist_matches_the_agent():
    vars_rs = SRC / "ecs_config" / "vars.rs"
    if not vars_rs.is_file():
        pytest.skip("src/ecs_config/vars.rs (the agent's variable table) does not exist yet")
    # rustfmt may spread one var(...) over several lines
    entries = re.findall(r'var\(\s*"(ECS_[A-Z0-9_]+)",.*?,\s*(Tag|Baked|Managed),?\s*\)',
                         rust_code(vars_rs), re.S)
    agent_tag_vars = {name for name, trust in entries if trust == "Tag"}
    text = (TF / "variables.tf").read_text()
    block = text.split('variable "agent_settings"', 1)[1].split("\nvariable ", 1)[0]
    allow = block.split("contains([", 1)[1].split("]", 1)[0]
    module_vars = set(re.findall(r'"(ECS_[A-Z0-9_]+)"', allow))
    assert module_vars == agent_tag_vars, f"module only {sorted(module_vars - agent_tag_vars)}, agent only {sorted(agent_tag_vars - module_vars)}"
    for refused in ("ECS_ENGINE_AUTH_TYPE", "ECS_ENGINE_AUTH_DATA", "ECS_ENABLE_TASK_IAM_ROLE",
                    "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST", "ECS_DISABLE_PRIVILEGED", "ECS_SELINUX_CAPABLE",
                    "ECS_DATADIR", "ECS_LOGFILE", "ECS_AWSVPC_BLOCK_IMDS", "ECS_CLUSTER", "ECS_INSTANCE_ATTRIBUTES"):
        assert refused not in module_vars, refused


def test_hook_transitions_in_the_agent_match(mod):
    code = "\n".join(rust_code(f) for f in rust_sources())
    transitions = set(re.findall(r"autoscaling:EC2_INSTANCE_[A-Z_]+", code))
    module = {h["lifecycle_transition"] for h in mod["resource"]["aws_autoscaling_lifecycle_hook"].values()}
    assert module == {"autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"}
    if not transitions:
        pytest.skip("src/ names no lifecycle transitions yet (it may rely on the hook-name tags)")
    assert transitions <= module, f"the agent looks for transitions the module never creates: {transitions - module}"


def test_agent_leaves_ecs_managed_draining_hook_alone():
    """With drainer = "ecs-managed" there is no ecs-boot:terminate-hook tag; an agent that discovers
    hooks with DescribeLifecycleHooks must not complete ECS's own termination hook."""
    code = "\n".join(rust_code(f) for f in rust_sources())
    if not re.search(r"\.describe_lifecycle_hooks\(\s*\)", code):
        pytest.skip("src/ does not discover hooks with DescribeLifecycleHooks yet")
    assert "ecs-managed-draining-termination-hook" in code, (
        "ecs-boot discovers hooks but never excludes ecs-managed-draining-termination-hook")
