"""The shipped units: valid for systemd, ordered before ecs.service, failing closed, hardened."""
import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd/ecs-boot.service"
DROP_IN = ROOT / "systemd/ecs.service.d/ecs-boot.conf"
BIN = ROOT / "target/debug/ecs-boot"


def parse(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(path)
    return cp


def seconds(value: str) -> int:
    return int(value.rstrip("s"))


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_units_verify(tmp_path):
    if not BIN.exists():
        pytest.skip("build ecs-boot first")
    # verify checks that ExecStart binaries exist: point them at the built binary.
    (tmp_path / "ecs-boot.service").write_text(UNIT.read_text().replace("/usr/bin/ecs-boot", str(BIN)))
    # A stand-in ecs.service with the real unit's ordering, plus our drop-in.
    (tmp_path / "ecs.service").write_text(
        "[Unit]\nAfter=docker.service\n[Service]\nType=simple\n"
        "EnvironmentFile=-/etc/ecs/ecs.config\nExecStart=/bin/true\n")
    (tmp_path / "ecs.service.d").mkdir()
    (tmp_path / "ecs.service.d/ecs-boot.conf").write_text(
        DROP_IN.read_text().replace("/usr/bin/ecs-boot", str(BIN)))
    out = subprocess.run(["systemd-analyze", "verify", "ecs-boot.service", "ecs.service"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    problems = [l for l in out.stderr.splitlines()
                if "ecs-boot" in l and "not found" not in l]
    assert not problems, problems


def test_unit_orders_before_ecs_and_notifies_after_writing():
    u = parse(UNIT)
    assert u["Service"]["Type"] == "notify"
    assert "ecs.service" in u["Unit"]["Before"]
    assert "cloud-final.service" in u["Unit"]["After"]
    assert "docker.service" in u["Unit"]["After"]
    assert "systemctl" not in UNIT.read_text().split("[Service]")[1].replace(
        "never `systemctl start ecs`", "")
    # Above the default tag wait of 120 s, so a slow tag propagation is not killed by systemd.
    assert seconds(u["Service"]["TimeoutStartSec"]) > 120
    assert u["Service"]["Restart"] == "on-failure"


def test_unit_is_hardened_and_writes_only_what_it_must():
    s = parse(UNIT)["Service"]
    assert s["ProtectSystem"] == "strict"
    assert s["ReadWritePaths"].split() == ["/etc/ecs"]
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert s[key] == "yes", key
    assert s["StateDirectory"] == "ecs-boot" and s["RuntimeDirectory"] == "ecs-boot"
    assert s["RuntimeDirectoryPreserve"] == "yes"


def test_drop_in_gates_ecs_on_a_complete_config():
    d = parse(DROP_IN)
    assert d["Service"]["ExecStartPre"] == "/usr/bin/ecs-boot gate"
    assert "ecs-boot.service" in d["Unit"]["After"]
