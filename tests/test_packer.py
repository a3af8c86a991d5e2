"""The AMI build: Packer template, provisioning scripts, and the RPM they install.

What runs here and what needs a tool (each test skips, with the reason, when its tool is missing):
- shellcheck on every shell script under packer/ (apt: shellcheck).
- The template parsed with python-hcl2 and checked for the properties the AMI must have.
- `packer fmt -check` and `packer validate -syntax-only` with whatever packer is installed. Debian
  ships 1.6.6, which predates `required_plugins` and `data` blocks: it validates a copy without
  them (HCL syntax only, see packer/README.md).
- The RPM, built once per session by packer/build-rpm.sh (a release build: 10+ minutes cold on 2
  cores; reused while newer than its inputs; ECS_BOOT_SKIP_RPM_BUILD=1 skips instead): its glibc
  symbol versions, files, scriptlets and requires.
- The provisioning scripts run for real, as root, in a Debian container of the simulated-instance
  base image (tests/sim/build-image), systemd installed but not running.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKER = REPO / "packer"
SCRIPTS = sorted((PACKER / "scripts").glob("*.sh"))
SHELL_FILES = sorted(p for p in PACKER.rglob("*.sh"))
TEMPLATE_FILES = sorted(PACKER.glob("*.pkr.hcl"))
TARGET = "x86_64-unknown-linux-gnu"
MAX_GLIBC = (2, 26)
SSM_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"


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
    return _one(template["source"], "amazon-ebs", "ecs_al2023")


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


def test_template_takes_the_latest_ecs_optimized_al2023_ami(template: dict, locals_: dict) -> None:
    parameter = _one(template["data"], "amazon-parameterstore", "ecs_optimized_al2023")
    assert SSM_PARAMETER in parameter["name"]
    assert SSM_PARAMETER.replace("amazon-linux-2023/", "amazon-linux-2023/arm64/") in parameter["name"]
    assert "data.amazon-parameterstore.ecs_optimized_al2023.value" in locals_["source_ami"]


def test_builder_requires_imdsv2_and_encrypts_the_root_volume(builder: dict) -> None:
    (metadata,) = builder["metadata_options"]
    assert metadata["http_tokens"] == "required"
    assert metadata["http_endpoint"] == "enabled"
    assert builder["imds_support"] == "v2.0"
    assert builder["encrypt_boot"] is True
    (root,) = builder["launch_block_device_mappings"]
    assert root["device_name"] == "/dev/xvda"
    assert root["encrypted"] is True


def test_ami_is_tagged_with_version_and_commit(builder: dict, locals_: dict) -> None:
    assert builder["tags"] == "${local.ami_tags}"
    assert builder["snapshot_tags"] == "${local.ami_tags}"
    tags = locals_["ami_tags"]
    assert re.search(r'"ecs-boot-version"\s*=\s*var\.ecs_boot_version', tags), tags
    assert re.search(r'"ecs-boot-commit"\s*=\s*var\.git_commit', tags), tags
    assert "var.extra_tags" in tags


def test_template_variables(variables: dict) -> None:
    for name in ("region", "instance_type", "subnet_id", "ami_name_prefix", "architecture", "config_file",
                 "extra_tags", "ecs_boot_version", "git_commit"):
        assert name in variables, f"variable {name} missing"
        assert variables[name].get("description"), f"variable {name} has no description"
    assert variables["architecture"]["default"] == "x86_64"
    assert "arm64" in str(variables["architecture"]["validation"])


def test_build_installs_with_the_scripts_and_writes_a_manifest(template: dict) -> None:
    (build,) = template["build"]
    assert build["sources"] == ["source.amazon-ebs.ecs_al2023"]
    destinations = [p["file"]["destination"] for p in build["provisioner"] if "file" in p]
    assert destinations == ["/tmp/ecs-boot.rpm", "/tmp/ecs-boot-config.toml"]
    (shell,) = [p["shell"] for p in build["provisioner"] if "shell" in p]
    assert "ECS_BOOT_RPM=/tmp/ecs-boot.rpm" in shell["environment_vars"]
    assert "ECS_BOOT_CONFIG=/tmp/ecs-boot-config.toml" in shell["environment_vars"]
    manifest = _one(build["post-processor"], "manifest")
    assert manifest["custom_data"]["git_commit"] == "${var.git_commit}"
    assert manifest["custom_data"]["ecs_boot_version"] == "${var.ecs_boot_version}"


def test_default_config_is_valid_toml_with_nothing_required() -> None:
    import tomllib

    config = tomllib.loads((PACKER / "files" / "config.toml").read_text())
    assert config == {"ecs": {}}, "the baked default must set nothing: every key is commented out"


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
# packer itself


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


def test_packer_validate_syntax(tmp_path: Path) -> None:
    packer = need("packer")
    version = _packer_version(packer)
    if version >= (1, 7, 0):
        template_dir = PACKER
    else:
        # Packer < 1.7 knows neither `required_plugins` nor `data` blocks: validate a copy without
        # them (the data source replaced by a literal AMI id). This checks HCL syntax and the
        # top-level block structure only; 1.6.6 does not check the builder's fields here.
        template_dir = tmp_path
        for path in TEMPLATE_FILES:
            text = path.read_text()
            if path.name == "ecs-boot.pkr.hcl":
                text = _strip_block(text, r"^packer \{")
                text = _strip_block(text, r'^data "amazon-parameterstore"')
                text = text.replace("data.amazon-parameterstore.ecs_optimized_al2023.value", '"ami-0123456789abcdef0"')
            (tmp_path / path.name).write_text(text)
    run = subprocess.run([packer, "validate", "-syntax-only", str(template_dir)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


# ---------------------------------------------------------------------------------------------
# The RPM (built once per session)

RPM_INPUTS = ["Cargo.toml", "Cargo.lock", "build.rs", "src", "systemd", "packer/files", "packer/rpm",
              "packer/build-rpm.sh"]


def _newest_input_mtime() -> float:
    newest = 0.0
    for rel in RPM_INPUTS:
        path = REPO / rel
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for child in path.rglob("*"):
                if child.is_file():
                    newest = max(newest, child.stat().st_mtime)
    return newest


def _cargo_version() -> str:
    import tomllib

    return tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]


@pytest.fixture(scope="session")
def rpm_path() -> Path:
    need("rpm")
    for unit in ("systemd/ecs-boot.service", "systemd/ecs.service.d/ecs-boot.conf"):
        if not (REPO / unit).is_file():
            pytest.skip(f"{unit} does not exist yet: the RPM ships it")
    rpm = REPO / "target" / TARGET / "generate-rpm" / f"ecs-boot-{_cargo_version()}-1.x86_64.rpm"
    binary = REPO / "target" / TARGET / "release" / "ecs-boot"
    fresh = rpm.is_file() and binary.is_file() and rpm.stat().st_mtime >= _newest_input_mtime()
    if not fresh:
        if os.environ.get("ECS_BOOT_SKIP_RPM_BUILD") == "1":
            pytest.skip("the RPM is missing or stale and ECS_BOOT_SKIP_RPM_BUILD=1")
        need("cargo")
        run = subprocess.run([str(PACKER / "build-rpm.sh")], cwd=REPO, capture_output=True, text=True,
                             timeout=3600)
        assert run.returncode == 0, f"packer/build-rpm.sh failed:\n{run.stderr[-6000:]}"
        printed = Path(run.stdout.strip().splitlines()[-1])
        assert printed == rpm, f"build-rpm.sh printed {printed}, expected {rpm}"
    assert rpm.is_file()
    return rpm


def _rpm_query(rpm: Path, *args: str) -> str:
    return subprocess.run(["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True, check=True).stdout


def _glibc_versions(binary: Path) -> set[tuple[int, ...]]:
    if shutil.which("objdump"):
        out = subprocess.run(["objdump", "-T", str(binary)], capture_output=True, text=True, check=True).stdout
    else:
        out = subprocess.run(["readelf", "--dyn-syms", "-W", str(binary)], capture_output=True, text=True,
                             check=True).stdout
    return {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)}


def test_binary_needs_at_most_glibc_2_26(rpm_path: Path) -> None:
    if not (shutil.which("objdump") or shutil.which("readelf")):
        pytest.skip("neither objdump nor readelf is installed (binutils)")
    binary = REPO / "target" / TARGET / "release" / "ecs-boot"
    # The binary inspected is the one the RPM ships.
    dump = _rpm_query(rpm_path, "--dump")
    shipped = next(line.split() for line in dump.splitlines() if line.startswith("/usr/bin/ecs-boot "))
    assert shipped[3] == hashlib.sha256(binary.read_bytes()).hexdigest(), "RPM and target/ binary differ"
    versions = _glibc_versions(binary)
    assert versions, "no GLIBC_ symbol versions found: is the binary dynamically linked against glibc?"
    too_new = sorted(v for v in versions if v > MAX_GLIBC)
    assert not too_new, f"symbols need glibc {['.'.join(map(str, v)) for v in too_new]} > 2.26 (Amazon Linux 2)"


def test_rpm_files(rpm_path: Path) -> None:
    dump = {line.split()[0]: line.split() for line in _rpm_query(rpm_path, "--dump").splitlines()}
    # --dump: path size mtime digest mode owner group isconfig isdoc rdev symlink
    expected_modes = {
        "/usr/bin/ecs-boot": 0o100755,
        "/usr/lib/systemd/system/ecs-boot.service": 0o100644,
        "/usr/lib/systemd/system/ecs.service.d/ecs-boot.conf": 0o100644,
        "/etc/ecs-boot/config.toml": 0o100644,
    }
    # /var/lib/ecs-boot is made by %post (cargo-generate-rpm cannot package an empty directory).
    for path, mode in expected_modes.items():
        assert path in dump, f"{path} not in the RPM: {sorted(dump)}"
        assert int(dump[path][4], 8) == mode, f"{path}: mode {dump[path][4]}"
        assert dump[path][5:7] == ["root", "root"], f"{path}: owner {dump[path][5:7]}"
    for source, dest in (("systemd/ecs-boot.service", "/usr/lib/systemd/system/ecs-boot.service"),
                         ("systemd/ecs.service.d/ecs-boot.conf", "/usr/lib/systemd/system/ecs.service.d/ecs-boot.conf"),
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


def test_rpm_installs_with_amazon_linux_2_rpm(rpm_path: Path) -> None:
    # Amazon Linux 2's rpm 4.11 cannot unpack zstd payloads (cargo-generate-rpm's default).
    requires = _rpm_query(rpm_path, "-R")
    assert "PayloadIsZstd" not in requires, requires
    assert _rpm_query(rpm_path, "--qf", "%{PAYLOADCOMPRESSOR}").strip() == "gzip"


def test_rpm_post_install_makes_the_state_directory(rpm_path: Path) -> None:
    assert "install -d -m 0700 -o root -g root /var/lib/ecs-boot" in _scriptlets(rpm_path)["postinstall"]


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
cp /src/ecs-boot.rpm /tmp/ecs-boot.rpm
printf '[ecs]\ncluster = "baked"\n' >/tmp/ecs-boot-config.toml

for script in /packer/scripts/*.sh; do
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

echo "== idempotent: the scripts run again"
cp /src/ecs-boot.rpm /tmp/ecs-boot.rpm
for script in /packer/scripts/*.sh; do "$script" >/dev/null; done
grep -qx 'cluster = "baked"' /etc/ecs-boot/config.toml
echo PROVISIONED
"""


def test_provisioning_scripts_in_a_debian_container(rpm_path: Path) -> None:
    image = _sim_base_image()
    run = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/bash",
         "-v", f"{PACKER}:/packer:ro", "-v", f"{rpm_path}:/src/ecs-boot.rpm:ro",
         image, "-c", PROVISION_CHECK],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0 and "PROVISIONED" in run.stdout, run.stdout[-6000:] + run.stderr[-3000:]
