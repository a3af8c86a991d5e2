"""tests/sim/build-image takes its Debian mirror from the host's apt configuration (issue 17 item
5): `build-image --print-mirror` against sample apt directories (APT_ETC)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

BUILD_IMAGE = Path(__file__).resolve().parent / "sim" / "build-image"

DEB822_WITH_SNAPSHOT_COMMENT = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.internal.example/debian-cache/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.internal.example/debian-security
Suites: bookworm-security
Components: main
"""


def mirror(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (etc / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "DEBIAN_MIRROR"}
    return subprocess.run([str(BUILD_IMAGE), "--print-mirror"], env={**env, "APT_ETC": str(etc)},
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("files, expected", [
    # deb822 (Debian 12's default layout); the commented snapshot URI is not a field.
    ({"sources.list.d/debian.sources": DEB822_WITH_SNAPSHOT_COMMENT},
     "http://mirror.internal.example/debian-cache/"),
    # One-line format with options in brackets (spaces inside), after a deb-src line.
    ({"sources.list": "# comment\ndeb-src http://src.example/debian bookworm main\n"
                      "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                      "https://apt.example.org/mirror/ bookworm main contrib\n"},
     "https://apt.example.org/mirror/"),
    # A third-party repository first (nodistro suite), security-only lines, a disabled stanza.
    ({"sources.list.d/00-nodesource.list": "deb https://deb.nodesource.com/node_20.x nodistro main\n",
      "sources.list.d/10-security.list": "deb http://security.debian.org/debian-security bookworm-security main\n",
      "sources.list.d/20-off.sources": "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n",
      "sources.list.d/30-debian.sources": "Types: deb deb-src\nURIs: http://a.example/debian\n http://b.example/debian\n"
                                          "Suites: trixie\nComponents: main\n"},
     "http://a.example/debian"),
    # sources.list comes before sources.list.d.
    ({"sources.list": "deb http://first.example/debian stable main\n",
      "sources.list.d/debian.sources": "Types: deb\nURIs: http://second.example/debian\nSuites: stable\n"},
     "http://first.example/debian"),
], ids=["deb822", "one-line with options", "skips third-party, security, disabled", "sources.list first"])
def test_mirror_comes_from_apt_sources(tmp_path, files, expected):
    r = mirror(tmp_path, files)
    assert r.returncode == 0, r.stderr
    assert r.stdout == expected + "\n"


def test_no_debian_archive_is_an_error_not_a_hard_coded_host(tmp_path):
    r = mirror(tmp_path, {"sources.list.d/other.list": "deb https://deb.nodesource.com/node_20.x nodistro main\n",
                          "sources.list.d/disabled.sources.disabled-by-farm": "Types: deb\nURIs: http://x/debian\nSuites: bookworm\n"})
    assert r.returncode != 0 and r.stdout == ""
    assert "set DEBIAN_MIRROR" in r.stderr


def test_debian_mirror_variable_wins(tmp_path):
    etc = tmp_path / "empty"
    etc.mkdir()
    r = subprocess.run([str(BUILD_IMAGE), "--print-mirror"], capture_output=True, text=True, timeout=30,
                       env={**os.environ, "APT_ETC": str(etc), "DEBIAN_MIRROR": "http://pinned.example/debian"})
    assert r.stdout == "http://pinned.example/debian\n"
