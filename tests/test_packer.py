"""The AMI build: Packer template, provisioning scripts, and the RPM they install.

What runs here and what needs a tool (each test skips, with the reason, when its tool is missing):
- shellcheck on every shell script under packer/ (apt: shellcheck).
- The template parsed with python-hcl2 and checked for the properties the AMI must have.
- `packer fmt -check` and `packer validate -syntax-only` with whatever packer is installed. Debian
  ships 1.6.6, which predates `required_plugins` and `data` blocks: it validates a copy without
  them (HCL syntax only, see packer/README.md).
- The RPM (end-to-end, `-m "not e2e"` leaves it out), from tests/sim/cached-rpm: packer/build-rpm.sh
  with the `sim` profile, built once per set of inputs and shared with the demo and the simulated
  instance (ECS_BOOT_PROFILE=release checks the AMI's own build): its glibc symbol versions, files,
  scriptlets and requires.
- The provisioning scripts run for real, as root, in a Debian container of the simulated-instance
  base image (tests/sim/build-image), systemd installed but not running.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKER = REPO / "packer"
SCRIPTS = sorted((PACKER / "scripts").glob("*.sh"))
SHELL_FILES = sorted([*PACKER.rglob("*.sh"), PACKER / "slim-agent"])
TEMPLATE_FILES = sorted(PACKER.glob("*.pkr.hcl"))
TARGET = "x86_64-unknown-linux-gnu"
MAX_GLIBC = (2, 26)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


# ---------------------------------------------------------------------------------------------
# Shell scripts


@pytest.mark.parametrize("script", SHELL_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck(script: Path) -> None:
    shellcheck = need("shellcheck")
    run = subprocess.run([shellcheck, "--external-sources", str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_provisioning_scripts_are_numbered_strict_and_executable() -> None:
    names = [p.name for p in SCRIPTS]
    assert names, "no provisioning scripts under packer/scripts"
    for script in SCRIPTS:
        assert re.fullmatch(r"\d\d-[a-z0-9-]+\.sh", script.name), script.name
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), script.name
        assert "\nset -euo pipefail\n" in text, f"{script.name} lacks set -euo pipefail"
    assert names[-1] == "90-cleanup.sh", "the golden-image cleanup must run last"
    # The template runs exactly these scripts, in this order.
    template = (PACKER / "ecs-boot.pkr.hcl").read_text()
    listed = re.findall(r'"\$\{path\.root\}/scripts/([^"]+)"', template)
    assert listed == names


def test_provisioning_never_starts_ecs() -> None:
    for script in SCRIPTS:
        for line in script.read_text().splitlines():
            code = line.split("#", 1)[0]
            assert not re.search(r"systemctl\s+(start|restart|try-restart|reload-or-restart)\b", code), (
                f"{script.name}: {line.strip()}"
            )


# ---------------------------------------------------------------------------------------------
# The CloudWatch agent (issue 22): baked in as an RPM, configured at boot by ecs-boot, never essential

CW_UNIT = REPO / "systemd" / "ecs-boot-cloudwatch-agent.service"
CW_SCRIPT = PACKER / "scripts" / "25-install-cloudwatch-agent.sh"


def _unit_directives(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_cloudwatch_agent_unit_writes_the_config_then_hands_it_to_the_agent() -> None:
    unit = _unit_directives(CW_UNIT)
    agent_config = (REPO / "src" / "metrics" / "agent_config.rs").read_text()
    (path,) = re.findall(r'CONFIG_FILE: &str = "([^"]+)"', agent_config)
    # ecs-boot renders the config from the trusted config (exit 1 = turned off: skipped, not failed).
    assert unit["ExecCondition"] == ["/usr/bin/ecs-boot cloudwatch-agent"]
    # The agent reads only its translated TOML: fetch-config translates the JSON ecs-boot wrote.
    (start,) = unit["ExecStart"]
    assert start.startswith("/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl ")
    assert "-a fetch-config" in start and "-m ec2" in start and " -s " in start
    assert start.endswith(f"-c file:{path}")
    assert unit["ConditionPathExists"] == ["/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"]
    # After cloud-init (config.d written); nothing of the boot waits on it.
    assert "cloud-init.service" in unit["After"][0]
    assert "Before" not in unit and "RequiredBy" not in unit
    for other in ("ecs-boot.service", "ecs.service.d/ecs-boot.conf"):
        assert "cloudwatch" not in (REPO / "systemd" / other).read_text()


def test_cloudwatch_agent_is_an_rpm_that_reads_journald() -> None:
    script = CW_SCRIPT.read_text()
    (minimum,) = re.findall(r'^min_version="([0-9.]+)"', script, re.M)
    facts = (REPO / "docs" / "aws-facts.md").read_text()
    assert f"1.300070.0" == minimum and minimum in facts, "the minimum is the documented one"
    code = "\n".join(line.split("#", 1)[0] for line in script.splitlines())
    assert "docker" not in code and "pull" not in code, "an RPM, never an image pulled at boot"
    assert "systemctl enable ecs-boot-cloudwatch-agent.service" in code
    assert "systemctl disable amazon-cloudwatch-agent.service" in code
    # The RPM ships the unit; the template passes the override and runs the script.
    cargo = (REPO / "Cargo.toml").read_text()
    assert 'source = "systemd/ecs-boot-cloudwatch-agent.service"' in cargo
    template = (PACKER / "ecs-boot.pkr.hcl").read_text()
    assert '"CLOUDWATCH_AGENT_RPM=${var.cloudwatch_agent_rpm}"' in template


# ---------------------------------------------------------------------------------------------
# The template, parsed


def _normalize(value):
    """python-hcl2 >= 7 keeps string literals quoted and adds bookkeeping keys; strip both."""
    if isinstance(value, dict):
        return {
            _normalize(k): _normalize(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")
        }
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@pytest.fixture(scope="module")
def template() -> dict:
    hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (pip install python-hcl2)")
    merged: dict[str, list] = {}
    for path in TEMPLATE_FILES:
        with path.open() as f:
            parsed = _normalize(hcl2.load(f))
        for key, blocks in parsed.items():
            merged.setdefault(key, []).extend(blocks)
    return merged


def _one(blocks: list, *labels: str) -> dict:
    found = [b for b in blocks if all(label in b for label in labels[:1])]
    assert len(found) == 1, f"expected one block labelled {labels}, found {len(found)}"
    block = found[0]
    for label in labels:
        block = block[label]
    return block


@pytest.fixture(scope="module")
def builder(template: dict) -> dict:
    return _one(template["source"], "amazon-ebs", "ecs_boot")


@pytest.fixture(scope="module")
def locals_(template: dict) -> dict:
    merged: dict = {}
    for block in template["locals"]:
        merged.update(block)
    return merged


@pytest.fixture(scope="module")
def variables(template: dict) -> dict:
    merged: dict = {}
    for block in template["variable"]:
        merged.update(block)
    return merged


def test_template_requires_the_amazon_plugin(template: dict) -> None:
    (packer,) = template["packer"]
    (plugins,) = packer["required_plugins"]
    assert plugins["amazon"]["source"] == "github.com/hashicorp/amazon"
    assert plugins["amazon"]["version"].startswith(">=")


def test_base_ami_comes_from_the_ecs_optimized_parameter(template: dict, locals_: dict) -> None:
    parameter = _one(template["data"], "amazon-parameterstore", "ecs_optimized")
    assert parameter["name"] == "${local.base_ami_parameter}"
    assert "data.amazon-parameterstore.ecs_optimized.value" in locals_["source_ami"]


def test_builder_takes_every_variable_decision_from_a_local(builder: dict) -> None:
    # The matrix below evaluates the locals with `packer console`; the source block must use them
    # as they are, or what the matrix checks is not what Packer builds.
    expected = {
        "source_ami": "local.source_ami", "instance_type": "local.instance_type", "ami_name": "local.ami_name",
        "ssh_interface": "local.ssh_interface", "iam_instance_profile": "local.iam_instance_profile",
        "temporary_security_group_source_public_ip": "local.ssh_source_public_ip",
        "temporary_security_group_source_cidrs": "local.ssh_source_cidrs", "kms_key_id": "local.kms_key_id",
        "region_kms_key_ids": "local.region_kms_key_ids", "deprecate_at": "local.deprecate_at",
        "ami_users": "var.ami_users", "ami_org_arns": "var.ami_org_arns", "ami_regions": "var.ami_regions",
        "tags": "local.ami_tags", "snapshot_tags": "local.ami_tags",
    }
    for field, reference in expected.items():
        assert builder[field] == "${" + reference + "}", f"{field} = {builder[field]!r}, expected {reference}"
    (root,) = builder["launch_block_device_mappings"]
    assert root["kms_key_id"] == "${local.kms_key_id}"
    (profile,) = builder["dynamic"]
    policy = profile["temporary_iam_instance_profile_policy_document"]
    assert policy["for_each"] == "${local.temporary_instance_profile ? [local.session_manager_actions] : []}"
    assert policy["content"][0]["Statement"][0]["Action"] == (
        "${temporary_iam_instance_profile_policy_document.value}")


def test_builder_requires_imdsv2_and_encrypts_the_root_volume(builder: dict) -> None:
    (metadata,) = builder["metadata_options"]
    assert metadata["http_tokens"] == "required"
    assert metadata["http_endpoint"] == "enabled"
    assert builder["imds_support"] == "v2.0"
    assert builder["encrypt_boot"] is True
    (root,) = builder["launch_block_device_mappings"]
    assert root["device_name"] == "/dev/xvda"
    assert root["encrypted"] is True


def test_ami_is_tagged_with_version_commit_base_and_architecture(locals_: dict) -> None:
    tags = locals_["ami_tags"]
    for key, value in (("ecs-boot-version", r"var\.ecs_boot_version"), ("ecs-boot-commit", r"var\.git_commit"),
                       ("base-os", r"local\.base_os_name"), ("architecture", r"var\.architecture")):
        assert re.search(rf'"{key}"\s*=\s*{value}', tags), (key, tags)
    assert "var.extra_tags" in tags


def test_template_variables(variables: dict) -> None:
    for name in ("region", "architecture", "base_os", "instance_type", "subnet_id", "builder_access",
                 "iam_instance_profile", "ssh_source_cidrs", "ami_name_prefix", "config_file", "extra_tags",
                 "ecs_boot_version", "git_commit", "ami_users", "ami_org_arns", "ami_regions", "kms_key_id",
                 "region_kms_key_ids", "deprecate_at", "publish", "ami_ssm_parameter", "manifest_s3_uri",
                 "cloudwatch_agent_rpm"):
        assert name in variables, f"variable {name} missing"
        assert variables[name].get("description"), f"variable {name} has no description"
    assert variables["architecture"]["default"] == "x86_64"
    assert variables["base_os"]["default"] == "al2023"
    assert variables["builder_access"]["default"] == "session_manager"
    # The KMS grant the Terraform module makes is named where users set the key.
    assert "ami_kms_key_arn" in variables["kms_key_id"]["description"]


def test_build_installs_with_the_scripts_then_publishes(template: dict) -> None:
    (build,) = template["build"]
    assert build["sources"] == ["source.amazon-ebs.ecs_boot"]
    destinations = [p["file"]["destination"] for p in build["provisioner"] if "file" in p]
    assert destinations == ["/tmp/ecs-boot.rpm", "/tmp/ecs-boot-config.toml"]
    (shell,) = [p["shell"] for p in build["provisioner"] if "shell" in p]
    assert "ECS_BOOT_RPM=/tmp/ecs-boot.rpm" in shell["environment_vars"]
    assert "ECS_BOOT_CONFIG=/tmp/ecs-boot-config.toml" in shell["environment_vars"]
    # One sequence: the manifest is written before publish-ami.py reads it.
    assert "post-processor" not in build, "post-processors outside the sequence run in no guaranteed order"
    (chain,) = build["post-processors"]
    manifest, publish = chain["post-processor"]
    manifest, publish = manifest["manifest"], publish["shell-local"]
    assert manifest["output"] == "${local.manifest_file}"
    assert manifest["custom_data"]["git_commit"] == "${var.git_commit}"
    assert manifest["custom_data"]["ecs_boot_version"] == "${var.ecs_boot_version}"
    assert manifest["custom_data"]["architecture"] == "${var.architecture}"
    assert publish["script"] == "${path.root}/publish-ami.py"
    assert sorted(publish["environment_vars"]) == sorted([
        "ECS_BOOT_PUBLISH=${var.publish}", "ECS_BOOT_MANIFEST=${local.manifest_file}",
        "ECS_BOOT_AMI_PARAMETER=${local.ami_ssm_parameter}", "ECS_BOOT_MANIFEST_S3_URI=${var.manifest_s3_uri}",
    ])


def test_default_config_is_valid_toml_with_nothing_required() -> None:
    import tomllib

    config = tomllib.loads((PACKER / "files" / "config.toml").read_text())
    # No cluster and nothing per group (those come from tags and config.d/): only the one agent
    # setting every instance gets, that awsvpc tasks cannot borrow the instance role from IMDS.
    assert config == {"ecs": {"settings": {"ECS_AWSVPC_BLOCK_IMDS": "true"}}}, config


def test_default_config_passes_check_config() -> None:
    binary = Path(os.environ.get("ECS_BOOT_BIN", REPO / "target" / "debug" / "ecs-boot"))
    if not binary.is_file():
        pytest.skip(f"{binary} is not built (cargo build)")
    if subprocess.run([str(binary), "check-config", "--help"], capture_output=True).returncode != 0:
        pytest.skip(f"{binary} has no check-config subcommand")
    run = subprocess.run([str(binary), "check-config", str(PACKER / "files" / "config.toml")], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr


# ---------------------------------------------------------------------------------------------
# packer itself: fmt, syntax, and every combination of variables evaluated and validated


def _packer_version(packer: str) -> tuple[int, ...]:
    out = subprocess.run([packer, "version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    assert match, out
    return tuple(int(x) for x in match.groups())


def test_packer_fmt_check() -> None:
    packer = need("packer")
    run = subprocess.run([packer, "fmt", "-check", "-diff", str(PACKER)], capture_output=True, text=True)
    assert run.returncode == 0, f"packer fmt would rewrite:\n{run.stdout}{run.stderr}"


def _strip_block(text: str, header_regex: str) -> str:
    """Remove one top-level block (header line to its closing brace at column 0)."""
    match = re.search(header_regex, text, re.M)
    assert match, header_regex
    end = text.index("\n}\n", match.start()) + 3
    return text[: match.start()] + text[end:]


def _skip_string(text: str, i: int) -> int:
    """Index just past the HCL string literal that starts at text[i] == '"'."""
    i += 1
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _call_arguments(text: str, open_paren: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose '(' is at open_paren, and the index past ')'."""
    args, depth, start, i = [], 0, open_paren + 1, open_paren
    while True:
        c = text[i]
        if c == '"':
            i = _skip_string(text, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(text[start:i].strip())
                return args, i + 1
        elif c == "," and depth == 1:
            args.append(text[start:i].strip())
            start = i + 1
        i += 1


def _rewrite_calls(text: str, function: str, rewrite) -> str:
    out, pos = [], 0
    for match in re.finditer(rf"\b{function}\(", text):
        if match.start() < pos:
            continue
        args, end = _call_arguments(text, match.end() - 1)
        out += [text[pos:match.start()], rewrite(args)]
        pos = end
    return "".join(out) + text[pos:]


# Packer 1.6.6 (Debian's, the CI's) predates these amazon-ebs fields and blocks; each is still
# checked here, through the local it is set from, and by python-hcl2 above.
NEWER_THAN_1_6_6 = {"imds_support": None, "ami_org_arns": None, "deprecate_at": None,
                    "temporary_security_group_source_public_ip": None, "metadata_options": "block"}


def _template_for_packer_1_6_6(dest: Path) -> Path:
    """A copy of the template that Packer 1.6.6 evaluates exactly like the original.

    1.6.6 knows neither `required_plugins` nor `data` blocks (the base AMI becomes a literal), nor
    the fields in NEWER_THAN_1_6_6, nor the functions regex() and alltrue(). Those two are rewritten
    into equivalents it has: can(regex(P, X)) with a whole-string pattern P is
    regex_replace(X, P, "") == "", and alltrue(L) is "no element of L is false". The scripts and
    files are linked in, so provisioners and post-processors validate as they would in packer/.
    """
    dest.mkdir(exist_ok=True)
    for path in TEMPLATE_FILES:
        text = path.read_text()
        if path.name == "ecs-boot.pkr.hcl":
            text = _strip_block(text, r"^packer \{")
            text = _strip_block(text, r'^data "amazon-parameterstore"')
            text = text.replace("data.amazon-parameterstore.ecs_optimized.value", '"ami-0123456789abcdef0"')
            start = text.index('source "amazon-ebs"')
            end = text.index("\n}\n", start)
            source = text[start:end]
            for field, kind in NEWER_THAN_1_6_6.items():
                pattern = rf"^  {field} \{{\n(.*\n)*?  \}}\n" if kind == "block" else rf"^  {field}\s*=.*\n"
                source, count = re.subn(pattern, "", source, flags=re.M)
                assert count == 1, f"{field} is no longer in the amazon-ebs source: update NEWER_THAN_1_6_6"
            text = text[:start] + source + text[end:]

        def regex_to_replace(args: list[str]) -> str:
            (inner,) = args
            assert inner.startswith("regex("), inner
            (pattern, value), _ = _call_arguments(inner, len("regex"))
            assert pattern.startswith('"^') and pattern.endswith('$"'), f"not a whole-string pattern: {pattern}"
            return f'(regex_replace({value}, {pattern}, "") == "")'

        text = _rewrite_calls(text, "can", lambda a: regex_to_replace(a) if a[0].startswith("regex(") else
                              f"can({a[0]})")
        text = _rewrite_calls(text, "alltrue", lambda a: f"(length([for ok in {a[0]} : ok if ok == false]) == 0)")
        assert not re.search(r"\b(regex|alltrue)\(", text)
        (dest / path.name).write_text(text)
    for name in ("scripts", "files", "publish-ami.py"):
        (dest / name).symlink_to(PACKER / name)
    return dest


def test_packer_validate_syntax(tmp_path: Path) -> None:
    packer = need("packer")
    template_dir = PACKER if _packer_version(packer) >= (1, 7, 0) else _template_for_packer_1_6_6(tmp_path / "t")
    run = subprocess.run([packer, "validate", "-syntax-only", str(template_dir)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


# Every combination of the variables that change what is built, how the builder is reached, and
# what is shared, with what each local must then be.
ARCHITECTURES = {
    "x86_64": {"rpm_arch": "x86_64", "instance_type": "t3.small", "parameter_arch": ""},
    "arm64": {"rpm_arch": "aarch64", "instance_type": "t4g.small", "parameter_arch": "/arm64"},
}
BASES = {"al2023": ("amazon-linux-2023", "/ecs-boot/ami/{arch}"), "al2": ("amazon-linux-2", "/ecs-boot/ami/al2/{arch}")}
ACCESS = {
    "session_manager": {},
    "session_manager_own_profile": {"iam_instance_profile": "packer-builder"},
    "ssh_from_this_host": {"builder_access": "ssh"},
    "ssh_from_cidrs": {"builder_access": "ssh", "ssh_source_cidrs": ["203.0.113.0/28"]},
}
SHARING = {
    "private": {},
    "shared": {"ami_users": ["111122223333"], "ami_org_arns": ["arn:aws:organizations::111122223333:organization/o-abcdefghij"],
               "ami_regions": ["eu-west-1", "us-west-2"], "kms_key_id": "alias/ecs-boot-ami",
               "region_kms_key_ids": {"eu-west-1": "alias/ecs-boot-ami-eu", "us-west-2": "alias/ecs-boot-ami"}, "deprecate_at": "2027-06-30T00:00:00Z",
               "ami_ssm_parameter": "/platform/ami/ecs", "manifest_s3_uri": "s3://artifacts-bucket/ecs-boot/manifest.json"},
}
EVALUATED = ["rpm_arch", "rpm_file", "instance_type", "base_ami_parameter", "base_os_name", "ami_name_prefix",
             "ssh_interface", "iam_instance_profile", "temporary_instance_profile", "ssh_source_public_ip",
             "ssh_source_cidrs", "kms_key_id", "region_kms_key_ids", "deprecate_at", "ami_ssm_parameter", "checks"]


def _var_args(values: dict) -> list[str]:
    args = []
    for name, value in values.items():
        args += ["-var", f"{name}={value if isinstance(value, str) else json.dumps(value)}"]
    return args


@pytest.fixture(scope="module")
def compat_template(tmp_path_factory) -> tuple[str, Path]:
    packer = need("packer")
    if _packer_version(packer)[:2] != (1, 6):
        # Newer Packer no longer bundles amazon-ebs (validate needs `packer init`, i.e. GitHub).
        pytest.skip("the variable matrix runs on Debian's packer 1.6.x, which bundles the amazon builder")
    return packer, _template_for_packer_1_6_6(tmp_path_factory.mktemp("packer-1.6.6") / "t")


def _evaluate(packer: str, template_dir: Path, values: dict) -> dict:
    # 1.6.6's console evaluates only the last line it reads: ask for everything at once.
    expression = "jsonencode({" + ", ".join(f"{name} = local.{name}" for name in EVALUATED) + "})"
    run = subprocess.run([packer, "console", *_var_args(values), str(template_dir)], input=expression,
                         capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip().startswith("{"), run.stdout + run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("sharing", SHARING)
@pytest.mark.parametrize("access", ACCESS)
@pytest.mark.parametrize("base_os", BASES)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_variable_combination_evaluates_and_validates(compat_template, tmp_path: Path, architecture: str,
                                                            base_os: str, access: str, sharing: str) -> None:
    packer, template_dir = compat_template
    rpm = tmp_path / "ecs-boot.rpm"
    rpm.write_bytes(b"stand-in: validate only checks the file exists")
    values = {"architecture": architecture, "base_os": base_os, "ecs_boot_version": "0.1.0", "git_commit": "0123abc",
              **ACCESS[access], **SHARING[sharing]}
    got = _evaluate(packer, template_dir, values)

    arch = ARCHITECTURES[architecture]
    os_name, default_parameter = BASES[base_os]
    assert got["rpm_arch"] == arch["rpm_arch"]
    assert got["rpm_file"].endswith(
        f"/../target/{arch['rpm_arch']}-unknown-linux-gnu/generate-rpm/ecs-boot-0.1.0-1.{arch['rpm_arch']}.rpm")
    assert got["instance_type"] == arch["instance_type"]
    assert got["base_ami_parameter"] == f"/aws/service/ecs/optimized-ami/{os_name}{arch['parameter_arch']}/recommended/image_id"
    assert got["base_os_name"] == os_name
    assert got["ami_name_prefix"] == f"ecs-boot-{base_os}"
    assert got["checks"] == ["ok"] * 5

    # No public SSH: Session Manager with an instance profile, or port 22 from named sources only.
    if values.get("builder_access", "session_manager") == "session_manager":
        assert got["ssh_interface"] == "session_manager"
        own = values.get("iam_instance_profile")
        assert got["iam_instance_profile"] == own
        assert got["temporary_instance_profile"] is (own is None)
        assert got["ssh_source_public_ip"] is False and got["ssh_source_cidrs"] is None
    else:
        assert got["ssh_interface"] is None and got["temporary_instance_profile"] is False
        cidrs = values.get("ssh_source_cidrs")
        assert got["ssh_source_cidrs"] == cidrs
        assert got["ssh_source_public_ip"] is (cidrs is None)

    shared = SHARING[sharing]
    assert got["kms_key_id"] == shared.get("kms_key_id")
    assert got["region_kms_key_ids"] == shared.get("region_kms_key_ids")
    assert got["deprecate_at"] == shared.get("deprecate_at")
    assert got["ami_ssm_parameter"] == shared.get("ami_ssm_parameter", default_parameter.format(arch=architecture))

    run = subprocess.run([packer, "validate", *_var_args({**values, "rpm_file": str(rpm)}), str(template_dir)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


REFUSED = [
    ({"architecture": "i386"}, "The architecture must be x86_64 or arm64."),
    ({"base_os": "al2022"}, "The base_os must be al2023 or al2."),
    ({"builder_access": "public_ip"}, "The builder_access must be session_manager or ssh."),
    ({"builder_access": "ssh", "ssh_source_cidrs": ["0.0.0.0/0"]}, "never 0.0.0.0/0"),
    ({"ssh_source_cidrs": ["10.0.0.0/33"]}, "The ssh_source_cidrs must be IPv4 CIDRs"),
    ({"ami_users": ["1234"]}, "The ami_users must be 12-digit AWS account ids."),
    ({"ami_org_arns": ["o-abcdefghij"]}, "The ami_org_arns must be organization ARNs"),
    ({"ami_regions": ["Europe"]}, "The ami_regions must be AWS region names"),
    ({"deprecate_at": "next year"}, "The deprecate_at must be empty or an RFC 3339 UTC time"),
    ({"ami_ssm_parameter": "ecs-boot/ami"}, "The ami_ssm_parameter must be empty or an absolute SSM parameter path"),
    ({"manifest_s3_uri": "https://bucket/key"}, "The manifest_s3_uri must be empty or s3://BUCKET/KEY"),
    ({"source_ami": "ubuntu"}, "The source_ami must be empty or an AMI id"),
    ({"ecs_boot_version": "latest"}, "The ecs_boot_version must be a semantic version"),
    ({"ami_users": ["111122223333"]}, "sharing the AMI (ami_users, ami_org_arns) needs kms_key_id"),
    ({"ami_org_arns": ["arn:aws:organizations::111122223333:organization/o-abcdefghij"]}, "needs kms_key_id"),
    ({"kms_key_id": "alias/k", "ami_regions": ["eu-west-1"], "region_kms_key_ids": {"us-west-2": "alias/k"}},
     "every region_kms_key_ids key must be one of ami_regions"),
    ({"kms_key_id": "alias/k", "ami_regions": ["eu-west-1", "us-west-2"], "region_kms_key_ids": {"us-west-2": "alias/k"}},
     "region_kms_key_ids, once set, needs a key for every ami_regions region"),
    ({"ami_regions": ["eu-west-1"], "region_kms_key_ids": {"eu-west-1": "alias/k"}}, "region_kms_key_ids needs kms_key_id"),
    ({"ami_regions": ["us-east-1"]}, "leave out region"),
]


@pytest.mark.parametrize("values,message", REFUSED, ids=[m[:40] for _, m in REFUSED])
def test_packer_refuses_a_bad_combination(compat_template, values: dict, message: str) -> None:
    packer, template_dir = compat_template
    base = {"ecs_boot_version": "0.1.0", "git_commit": "0123abc", "rpm_file": str(PACKER / "files" / "config.toml")}
    run = subprocess.run([packer, "validate", *_var_args({**base, **values}), str(template_dir)],
                         capture_output=True, text=True)
    output = re.sub(r"\s+", " ", run.stdout + run.stderr)
    assert run.returncode != 0, f"accepted {values}"
    assert message in output, output


# ---------------------------------------------------------------------------------------------
# The RPM (built once, shared with the demo and the simulated instance)

@pytest.fixture(scope="session")
def rpm_path() -> Path:
    """tests/sim/cached-rpm: the RPM of the `sim` profile (the release profile's code, faster to
    compile), built by packer/build-rpm.sh once per set of inputs and cached under .cache/rpm/ with
    the binary it ships. ECS_BOOT_PROFILE=release checks the very RPM Packer bakes."""
    need("rpm")
    for unit in ("systemd/ecs-boot.service", "systemd/ecs.service.d/ecs-boot.conf"):
        if not (REPO / unit).is_file():
            pytest.skip(f"{unit} does not exist yet: the RPM ships it")
    need("cargo")
    env = {k: v for k, v in os.environ.items() if k != "ECS_BOOT_ARCH"}
    run = subprocess.run([str(REPO / "tests" / "sim" / "cached-rpm")], cwd=REPO, capture_output=True,
                         text=True, timeout=3600, env=env)
    assert run.returncode == 0, f"tests/sim/cached-rpm failed:\n{run.stderr[-6000:]}"
    rpm = Path(run.stdout.strip().splitlines()[-1])
    assert rpm.name == f"ecs-boot-{_cargo_version()}-1.x86_64.rpm", rpm
    assert rpm.is_file()
    return rpm


def _cargo_version() -> str:
    import tomllib

    return tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]


def _rpm_query(rpm: Path, *args: str) -> str:
    return subprocess.run(["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True, check=True).stdout


def _glibc_versions(binary: Path) -> set[tuple[int, ...]]:
    if shutil.which("objdump"):
        out = subprocess.run(["objdump", "-T", str(binary)], capture_output=True, text=True, check=True).stdout
    else:
        out = subprocess.run(["readelf", "--dyn-syms", "-W", str(binary)], capture_output=True, text=True,
                             check=True).stdout
    return {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)}


@pytest.mark.e2e
def test_binary_needs_at_most_glibc_2_26(rpm_path: Path) -> None:
    if not (shutil.which("objdump") or shutil.which("readelf")):
        pytest.skip("neither objdump nor readelf is installed (binutils)")
    binary = rpm_path.parent / "ecs-boot"  # cached next to the RPM by tests/sim/cached-rpm
    # The binary inspected is the one the RPM ships.
    dump = _rpm_query(rpm_path, "--dump")
    shipped = next(line.split() for line in dump.splitlines() if line.startswith("/usr/bin/ecs-boot "))
    assert shipped[3] == hashlib.sha256(binary.read_bytes()).hexdigest(), "RPM and target/ binary differ"
    versions = _glibc_versions(binary)
    assert versions, "no GLIBC_ symbol versions found: is the binary dynamically linked against glibc?"
    too_new = sorted(v for v in versions if v > MAX_GLIBC)
    assert not too_new, f"symbols need glibc {['.'.join(map(str, v)) for v in too_new]} > 2.26 (Amazon Linux 2)"


def _elf_type_and_sections(binary: Path) -> tuple[int, set[str]]:
    """e_type (2 = a position-dependent executable, 3 = PIE) and the section names of a 64-bit
    little-endian ELF file."""
    data = binary.read_bytes()
    assert data[:6] == b"\x7fELF\x02\x01", "not a 64-bit little-endian ELF file"
    (e_type,) = struct.unpack_from("<H", data, 16)
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = headers[shstrndx][4]
    names = {data[strtab_off + h[0]:data.index(b"\0", strtab_off + h[0])].decode() for h in headers}
    return e_type, names


@pytest.mark.e2e
def test_shipped_binary_is_position_dependent_without_unwind_tables(rpm_path: Path) -> None:
    """build.rs links the agent -no-pie and packer/slim-agent removes the unwind tables (sizes
    and costs in bench/results/README.md)."""
    e_type, sections = _elf_type_and_sections(rpm_path.parent / "ecs-boot")
    assert e_type == 2, f"ELF type {e_type}: the agent is linked as PIE"
    assert {".text", ".rodata"} <= sections
    assert not sections & {".eh_frame", ".eh_frame_hdr"}, "unwind tables shipped"


@pytest.mark.e2e
def test_rpm_files(rpm_path: Path) -> None:
    dump = {line.split()[0]: line.split() for line in _rpm_query(rpm_path, "--dump").splitlines()}
    # --dump: path size mtime digest mode owner group isconfig isdoc rdev symlink
    expected_modes = {
        "/usr/bin/ecs-boot": 0o100755,
        "/usr/lib/systemd/system/ecs-boot.service": 0o100644,
        "/usr/lib/systemd/system/ecs.service.d/ecs-boot.conf": 0o100644,
        "/usr/lib/systemd/system/ecs-boot-cloudwatch-agent.service": 0o100644,
        "/etc/ecs-boot/config.toml": 0o100644,
    }
    # /var/lib/ecs-boot is made by %post (cargo-generate-rpm cannot package an empty directory).
    for path, mode in expected_modes.items():
        assert path in dump, f"{path} not in the RPM: {sorted(dump)}"
        assert int(dump[path][4], 8) == mode, f"{path}: mode {dump[path][4]}"
        assert dump[path][5:7] == ["root", "root"], f"{path}: owner {dump[path][5:7]}"
    for source, dest in (("systemd/ecs-boot.service", "/usr/lib/systemd/system/ecs-boot.service"),
                         ("systemd/ecs.service.d/ecs-boot.conf", "/usr/lib/systemd/system/ecs.service.d/ecs-boot.conf"),
                         ("systemd/ecs-boot-cloudwatch-agent.service",
                          "/usr/lib/systemd/system/ecs-boot-cloudwatch-agent.service"),
                         ("packer/files/config.toml", "/etc/ecs-boot/config.toml")):
        assert dump[dest][3] == hashlib.sha256((REPO / source).read_bytes()).hexdigest(), f"{dest} is stale"
    # Only the config is a config file, and it is %config(noreplace).
    configs = _rpm_query(rpm_path, "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]")
    flags = dict(line.split(" ", 1) if " " in line else (line, "") for line in configs.splitlines())
    assert flags["/etc/ecs-boot/config.toml"].strip() == "cn", flags  # c = %config, n = noreplace
    assert [p for p, f in flags.items() if "c" in f] == ["/etc/ecs-boot/config.toml"]


def _scriptlets(rpm: Path) -> dict[str, str]:
    """`rpm -qp --scripts` as {"postinstall": body, ...}, comments dropped."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in _rpm_query(rpm, "--scripts").splitlines():
        header = re.fullmatch(r"(\w+) scriptlet(?: \(using [^)]*\))?:", line)
        if header:
            current = sections.setdefault(header.group(1), [])
        elif current is not None:
            current.append(line.split("#", 1)[0])
    return {name: "\n".join(lines) for name, lines in sections.items()}


@pytest.mark.e2e
def test_rpm_scriptlets_enable_but_never_restart(rpm_path: Path) -> None:
    scripts = _scriptlets(rpm_path)
    assert set(scripts) == {"postinstall", "preuninstall", "postuninstall"}, sorted(scripts)
    # Enabled on first install ($1 == 1) only.
    assert re.search(r'if \[ "\$1" -eq 1 \]; then\s+systemctl enable ecs-boot\.service', scripts["postinstall"])
    for name, body in scripts.items():
        # An upgrade must never restart ecs-boot mid-drain, nor start or stop anything.
        for line in body.splitlines():
            assert not re.search(r"systemctl(\s+\S+)*\s+(start|stop|restart|try-restart|reload-or-restart)\b", line), (
                f"{name}: {line}"
            )


@pytest.mark.e2e
def test_rpm_has_no_requires_beyond_rpmlib(rpm_path: Path) -> None:
    requires = _rpm_query(rpm_path, "--qf", "[%{REQUIRENAME}\t%{REQUIREFLAGS:deptype}\n]").splitlines()
    others = []
    for line in requires:
        name, deptype = line.split("\t")
        if name.startswith("rpmlib(") or name == "config(ecs-boot)":
            continue
        # rpm itself adds the scriptlets' interpreter (Requires(post,interp): /bin/sh); nothing else.
        if name == "/bin/sh" and "interp" in deptype:
            continue
        others.append(line)
    assert not others, f"the RPM must declare no library or package requires: {others}"


@pytest.mark.e2e
def test_rpm_installs_with_amazon_linux_2_rpm(rpm_path: Path) -> None:
    # Amazon Linux 2's rpm 4.11 cannot unpack zstd payloads (cargo-generate-rpm's default).
    requires = _rpm_query(rpm_path, "-R")
    assert "PayloadIsZstd" not in requires, requires
    assert _rpm_query(rpm_path, "--qf", "%{PAYLOADCOMPRESSOR}").strip() == "gzip"


@pytest.mark.e2e
def test_rpm_post_install_makes_the_state_directory(rpm_path: Path) -> None:
    assert "install -d -m 0700 -o root -g root /var/lib/ecs-boot" in _scriptlets(rpm_path)["postinstall"]


STUB_UNAME = """#!/bin/sh
# An arm64 (Graviton) build host.
if [ "$1" = -m ]; then echo aarch64; else exec /usr/bin/env -i PATH=/usr/bin:/bin uname "$@"; fi
"""
STUB_RUSTUP = """#!/bin/sh
# rustup on an aarch64 host: its native standard library is installed.
printf 'aarch64-unknown-linux-gnu\\n'
"""
STUB_CARGO = """#!/bin/sh
# cargo, except that `cargo zigbuild` (the compile this machine cannot do for aarch64: no aarch64
# standard library) is logged and leaves a stand-in binary where it would leave the real one.
if [ "$1" = zigbuild ]; then
  printf '%s\\n' "$*" >>"$ZIGBUILD_LOG"
  mkdir -p "$CARGO_TARGET_DIR/aarch64-unknown-linux-gnu/release"
  cp "$STAND_IN_BINARY" "$CARGO_TARGET_DIR/aarch64-unknown-linux-gnu/release/ecs-boot"
  exit 0
fi
exec "$REAL_CARGO" "$@"
"""


@pytest.mark.e2e
def test_arm64_rpm_builds_natively_on_an_arm64_host_without_edits(rpm_path: Path, tmp_path: Path) -> None:
    """build-rpm.sh on a Graviton host, as far as this x86_64 machine can go: uname says aarch64,
    the compile is a stand-in, and the real cargo-generate-rpm packages the result."""
    # rpm_path first: the one real build has installed every tool build-rpm.sh uses.
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, text in (("uname", STUB_UNAME), ("rustup", STUB_RUSTUP), ("cargo", STUB_CARGO)):
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    stand_in = tmp_path / "ecs-boot.aarch64"
    stand_in.write_bytes(b"stand-in for the aarch64 ecs-boot binary")
    target_dir = tmp_path / "target"
    env = {k: v for k, v in os.environ.items() if k not in ("ECS_BOOT_ARCH", "ECS_BOOT_PROFILE")}
    env.update(PATH=f"{stubs}:{os.environ['PATH']}", CARGO_TARGET_DIR=str(target_dir),
               ZIGBUILD_LOG=str(tmp_path / "zigbuild.log"), STAND_IN_BINARY=str(stand_in), REAL_CARGO=need("cargo"))
    run = subprocess.run([str(PACKER / "build-rpm.sh")], cwd=REPO, capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]

    version = _cargo_version()
    assert (tmp_path / "zigbuild.log").read_text().split() == [
        "zigbuild", "--release", "--bin", "ecs-boot", "--no-default-features", "--locked",
        "--target", "aarch64-unknown-linux-gnu.2.26"]
    # The file name packer/ecs-boot.pkr.hcl looks for when architecture = "arm64" (checked above).
    rpm = target_dir / "aarch64-unknown-linux-gnu" / "generate-rpm" / f"ecs-boot-{version}-1.aarch64.rpm"
    assert Path(run.stdout.strip().splitlines()[-1]) == rpm
    assert _rpm_query(rpm, "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{PAYLOADCOMPRESSOR}") == (
        f"ecs-boot {version} 1 aarch64 gzip")
    dump = {line.split()[0]: line.split() for line in _rpm_query(rpm, "--dump").splitlines()}
    assert dump["/usr/bin/ecs-boot"][3] == hashlib.sha256(stand_in.read_bytes()).hexdigest()
    # Apart from the binary, the same package as the x86_64 one that is installed for real.
    x86 = {line.split()[0]: line.split() for line in _rpm_query(rpm_path, "--dump").splitlines()}
    assert sorted(dump) == sorted(x86)
    for path in dump:
        if path != "/usr/bin/ecs-boot":
            assert dump[path][3:8] == x86[path][3:8], path
    assert _scriptlets(rpm) == _scriptlets(rpm_path)
    assert _rpm_query(rpm, "-R") == _rpm_query(rpm_path, "-R")


def test_build_rpm_refuses_an_unknown_architecture() -> None:
    run = subprocess.run([str(PACKER / "build-rpm.sh")], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "ECS_BOOT_ARCH": "riscv64"})
    assert run.returncode == 2 and "unsupported ECS_BOOT_ARCH=riscv64" in run.stderr, run.stderr


# ---------------------------------------------------------------------------------------------
# The provisioning scripts, run for real


def _sim_base_image() -> str:
    need("docker")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("docker is installed but its daemon is not reachable")
    build_image = REPO / "tests" / "sim" / "build-image"
    if not build_image.is_file():
        pytest.skip("tests/sim/build-image does not exist yet")
    run = subprocess.run([str(build_image)], env={**os.environ, "SIM_BASE_ONLY": "1"}, capture_output=True,
                         text=True, timeout=1800)
    assert run.returncode == 0, f"tests/sim/build-image failed:\n{run.stderr[-4000:]}"
    return run.stdout.strip().splitlines()[-1]


PROVISION_CHECK = r"""
set -euo pipefail
# A builder's leftovers that cleanup must remove.
mkdir -p /var/lib/ecs/data /etc/ecs /etc/ssh /var/lib/cloud/instance /var/log/journal/x /root/.ssh /home/ec2-user/.ssh
echo '{"Cluster":"builder"}' >/var/lib/ecs/data/ecs_agent_data.json
echo 'ECS_CLUSTER=builder' >/etc/ecs/ecs.config
echo 0123456789abcdef0123456789abcdef >/etc/machine-id
echo key >/etc/ssh/ssh_host_ed25519_key; echo pub >/etc/ssh/ssh_host_ed25519_key.pub
echo packer-key >/home/ec2-user/.ssh/authorized_keys
echo boot >/var/lib/cloud/instance/boot-finished
echo log >/var/log/journal/x/system.journal
# What amazon-ecs-ami's cleanup also removes: hostname, package-manager history, /tmp, logs.
test -s /etc/hostname  # Docker's bind mount: emptied, since it cannot be deleted
mkdir -p /var/lib/dnf /var/lib/yum/history/2026-11-30 /var/cache/dnf/amazonlinux /var/log/sa /tmp/builder.d
echo db >/var/lib/dnf/history.sqlite; echo db >/var/lib/yum/history/2026-11-30/1
echo rpm >/var/cache/dnf/amazonlinux/x.rpm; echo log >/var/log/dnf.log; echo log >/var/log/yum.log
echo stats >/var/log/sa/sa30; echo LANG=C >/etc/locale.conf; : >/etc/.updated
echo scratch >/tmp/builder.d/x; echo scratch >/tmp/.hidden; echo scratch >/var/tmp/y
cp /src/ecs-boot.rpm /tmp/ecs-boot.rpm
printf '[ecs]\ncluster = "baked"\n' >/tmp/ecs-boot-config.toml

# Run from a read-only mount under /tmp, as tests/sim/build-image does: cleanup empties /tmp
# around it and must keep the mount.
for script in /tmp/packer-scripts/*.sh; do
  echo "== $script"
  "$script"
done

echo "== checks"
rpm -q ecs-boot
test -x /usr/bin/ecs-boot
test -L /etc/systemd/system/multi-user.target.wants/ecs-boot.service
test -f /usr/lib/systemd/system/ecs.service.d/ecs-boot.conf
grep -qx 'cluster = "baked"' /etc/ecs-boot/config.toml
test "$(stat -c %a /etc/ecs-boot/config.toml)" = 644
test "$(stat -c %a /var/lib/ecs-boot)" = 700
test -z "$(ls -A /var/lib/ecs/data)"
test ! -s /etc/ecs/ecs.config
test ! -s /etc/machine-id
test ! -e /etc/ssh/ssh_host_ed25519_key
test ! -e /home/ec2-user/.ssh/authorized_keys
test -z "$(ls -A /var/lib/cloud)"
test -z "$(ls -A /var/log/journal)"
test ! -e /tmp/ecs-boot.rpm
test ! -e /tmp/ecs-boot-config.toml
test ! -s /etc/hostname
test ! -e /var/lib/dnf/history.sqlite
test -z "$(ls -A /var/lib/yum/history)"
test -z "$(ls -A /var/cache/dnf)"
test ! -e /var/log/dnf.log && test ! -e /var/log/yum.log && test ! -e /var/log/sa/sa30
test ! -e /etc/locale.conf && test ! -e /etc/.updated
test "$(ls -A /tmp)" = packer-scripts
test -x /tmp/packer-scripts/90-cleanup.sh
test -z "$(ls -A /var/tmp)"

# Not Amazon Linux: no CloudWatch agent, and its unit is left off (it would be skipped anyway).
test ! -e /opt/aws/amazon-cloudwatch-agent
test ! -e /etc/systemd/system/multi-user.target.wants/ecs-boot-cloudwatch-agent.service
# The unit itself loads (verify also wants its ExecStart to exist: a stand-in, removed after).
ctl=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
mkdir -p "$(dirname $ctl)" && printf '#!/bin/sh\n' >$ctl && chmod +x $ctl
systemd-analyze verify /usr/lib/systemd/system/ecs-boot-cloudwatch-agent.service
rm -rf /opt/aws

# Debian's systemd knows every directive of the unit: no compatibility drop-in.
test ! -e /etc/systemd/system/ecs-boot.service.d/10-systemd-before-235.conf
test ! -e /etc/tmpfiles.d/ecs-boot.conf

echo "== Amazon Linux 2's systemd 219"
mkdir -p /tmp/al2-bin
printf '#!/bin/sh\necho "systemd 219"\necho "+PAM +AUDIT"\n' >/tmp/al2-bin/systemctl
chmod +x /tmp/al2-bin/systemctl
PATH=/tmp/al2-bin:$PATH /tmp/packer-scripts/40-systemd-compat.sh
dropin=/etc/systemd/system/ecs-boot.service.d/10-systemd-before-235.conf
grep -qx 'StartLimitInterval=600' $dropin
grep -qx 'ProtectSystem=full' $dropin
grep -qx 'ReadWriteDirectories=/etc/ecs' $dropin
grep -qx 'RuntimeDirectory=' $dropin
grep -qx 'd /run/ecs-boot 0755 root root -' /etc/tmpfiles.d/ecs-boot.conf
# The unit with its drop-in still loads (checked by this newer systemd, offline).
systemd-analyze verify ecs-boot.service
rm -rf /tmp/al2-bin
/tmp/packer-scripts/40-systemd-compat.sh
test ! -e $dropin && test ! -e /etc/tmpfiles.d/ecs-boot.conf

echo "== idempotent: the scripts run again"
cp /src/ecs-boot.rpm /tmp/ecs-boot.rpm
for script in /tmp/packer-scripts/*.sh; do "$script" >/dev/null; done
grep -qx 'cluster = "baked"' /etc/ecs-boot/config.toml
echo PROVISIONED
"""


@pytest.mark.e2e
def test_provisioning_scripts_in_a_debian_container(rpm_path: Path) -> None:
    image = _sim_base_image()
    run = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/bash",
         "-v", f"{PACKER / 'scripts'}:/tmp/packer-scripts:ro", "-v", f"{rpm_path}:/src/ecs-boot.rpm:ro",
         image, "-c", PROVISION_CHECK],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0 and "PROVISIONED" in run.stdout, run.stdout[-6000:] + run.stderr[-3000:]


# ---------------------------------------------------------------------------------------------
# The handoff: publish-ami.py against the moto server (tests/harness)

RUN = "6b1c2d3e-0000-4000-8000-00000000000a"
OLD_RUN = "6b1c2d3e-0000-4000-8000-00000000000b"
COPY_REGION = "eu-west-1"


def _manifest(artifact_id, run: str = RUN) -> dict:
    """What Packer's manifest post-processor writes: this run's build after an older run's."""
    def build(artifact, uuid):
        return {"name": "ecs_boot", "builder_type": "amazon-ebs", "build_time": 1796000000, "files": None,
                "artifact_id": artifact, "packer_run_uuid": uuid,
                "custom_data": {"ecs_boot_version": "0.1.0", "git_commit": "0123abc", "architecture": "arm64",
                                "base_os": "al2023"}}
    return {"builds": [build("us-east-1:ami-0ffffffffffffffff", OLD_RUN), build(artifact_id, run)],
            "last_run_uuid": run}


def _publish(moto, tmp_path: Path, manifest: dict | str, **env: str) -> subprocess.CompletedProcess:
    path = tmp_path / "manifest.json"
    path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    environment = {
        "PATH": os.environ["PATH"], "HOME": str(home), "AWS_ENDPOINT_URL": moto.url, "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "ECS_BOOT_MANIFEST": str(path), "ECS_BOOT_AMI_PARAMETER": "/ecs-boot/ami/arm64",
        "ECS_BOOT_MANIFEST_S3_URI": "s3://ami-pipeline/ecs-boot/arm64/manifest.json", **env,
    }
    return subprocess.run([sys.executable, str(PACKER / "publish-ami.py")], env=environment, capture_output=True,
                          text=True, timeout=120)


def _client_calls(moto) -> list[tuple[str, str]]:
    return [(c["service"], c["action"]) for c in moto.calls(source="client")]


def test_publish_writes_the_ami_of_every_region_and_the_manifest(moto, tmp_path: Path) -> None:
    moto.client("s3").create_bucket(Bucket="ami-pipeline")
    run = _publish(moto, tmp_path, _manifest(f"us-east-1:ami-0123456789abcdef0,{COPY_REGION}:ami-0fedcba9876543210"))
    assert run.returncode == 0, run.stderr

    for region, ami in (("us-east-1", "ami-0123456789abcdef0"), (COPY_REGION, "ami-0fedcba9876543210")):
        parameter = moto.client("ssm", region).get_parameter(Name="/ecs-boot/ami/arm64")["Parameter"]
        assert (parameter["Value"], parameter["Type"], parameter["DataType"]) == (ami, "String", "aws:ec2:image")
        described = moto.client("ssm", region).describe_parameters()["Parameters"]
        assert "ecs-boot 0.1.0 (0123abc) al2023 arm64" in described[0]["Description"]
    body = moto.client("s3").get_object(Bucket="ami-pipeline", Key="ecs-boot/arm64/manifest.json")["Body"].read()
    uploaded = json.loads(body)
    # Only this run's build: an older run in the local file must not reach the pipeline.
    assert [b["packer_run_uuid"] for b in uploaded["builds"]] == [RUN]
    assert uploaded["last_run_uuid"] == RUN
    assert _client_calls(moto) == [("ssm", "PutParameter"), ("ssm", "PutParameter"), ("s3", "PutObject")]


def test_publish_overwrites_the_parameter_on_a_new_build(moto, tmp_path: Path) -> None:
    assert _publish(moto, tmp_path, _manifest("us-east-1:ami-0123456789abcdef0"),
                    ECS_BOOT_MANIFEST_S3_URI="").returncode == 0
    run = _publish(moto, tmp_path, _manifest("us-east-1:ami-0aaaaaaaaaaaaaaaa", run=OLD_RUN.replace("b", "c")),
                   ECS_BOOT_MANIFEST_S3_URI="")
    assert run.returncode == 0, run.stderr
    parameter = moto.client("ssm").get_parameter(Name="/ecs-boot/ami/arm64")["Parameter"]
    assert (parameter["Value"], parameter["Version"]) == ("ami-0aaaaaaaaaaaaaaaa", 2)
    assert "version 2" in run.stdout
    assert ("s3", "PutObject") not in _client_calls(moto), "no manifest_s3_uri: no upload"


@pytest.mark.parametrize("manifest,reason", [
    (_manifest(""), "artifact_id is missing or empty: the build produced no AMI id"),
    (_manifest(None), "artifact_id is missing or empty: the build produced no AMI id"),
    (_manifest("us-east-1:"), "is not REGION:ami-ID: no AMI id"),
    (_manifest("us-east-1:ami-0123456789abcdef0,eu-west-1:snap-0123"), "is not REGION:ami-ID: no AMI id"),
    ({**_manifest("us-east-1:ami-0123456789abcdef0"), "last_run_uuid": "another-run"}, "no build of the last run"),
    ({"artifact_id": "us-east-1:ami-0123456789abcdef0"}, "not a Packer manifest"),
    ("{not json", "not JSON"),
], ids=["empty", "null", "region-only", "bad-copy", "stale-run", "not-manifest", "not-json"])
def test_publish_refuses_a_manifest_without_an_ami_and_writes_nothing(moto, tmp_path: Path, manifest,
                                                                      reason: str) -> None:
    moto.client("s3").create_bucket(Bucket="ami-pipeline")
    moto.reset_calls()
    run = _publish(moto, tmp_path, manifest)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith("publish-ami: refused: ") and reason in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    # Refused before any AWS call, so a half-published build cannot happen.
    assert _client_calls(moto) == []


def test_publish_refuses_bad_settings(moto, tmp_path: Path) -> None:
    good = _manifest("us-east-1:ami-0123456789abcdef0")
    for env, reason in (({"ECS_BOOT_AMI_PARAMETER": "ecs-boot/ami"}, "is not an SSM parameter path"),
                        ({"ECS_BOOT_MANIFEST_S3_URI": "s3://ami-pipeline/"}, "is not s3://BUCKET/KEY"),
                        ({"ECS_BOOT_MANIFEST": str(tmp_path / "missing.json")}, "cannot read the manifest")):
        run = _publish(moto, tmp_path, good, **env)
        assert run.returncode == 2 and reason in run.stderr, (env, run.stderr)
    assert _client_calls(moto) == []


def test_publish_off_writes_nothing(moto, tmp_path: Path) -> None:
    run = _publish(moto, tmp_path, _manifest(""), ECS_BOOT_PUBLISH="false")
    assert run.returncode == 0 and "nothing published" in run.stdout, run.stdout + run.stderr
    assert _client_calls(moto) == []


def test_publish_reports_an_aws_failure_in_one_line(moto, tmp_path: Path) -> None:
    # No bucket: the parameter is written, the upload fails, and the build must fail with the reason.
    run = _publish(moto, tmp_path, _manifest("us-east-1:ami-0123456789abcdef0"))
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr.startswith("publish-ami: failed: ") and "NoSuchBucket" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert _client_calls(moto) == [("ssm", "PutParameter"), ("s3", "PutObject")]
