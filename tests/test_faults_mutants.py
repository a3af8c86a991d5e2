"""The fault matrix's own test: a deliberately broken ecs-boot must make the matching rows fail,
and the real binary must pass the same rows. A row that passes on a mutant proves nothing.

Mutants (tests/mutants/catalog.py): a restart that forgets its completions (double completion),
a writer that truncates ecs.config in place (not atomic), a writer without fsync. Each is one
debug build of a patched copy of src/, cached under .cache/mutants by source hash (about 20 s
each when only our crate recompiles). The rows run in a child pytest with ECS_BOOT_BIN set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mutants import build
from mutants.catalog import MUTANTS

# A debug build per mutant and the rows run twice: out of the inner loop (`tests/run -m "not e2e"`).
pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
REAL = Path(os.environ.get("ECS_BOOT_BIN") or REPO / "target/debug/ecs-boot")


def run_rows(binary: Path, rows: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ECS_BOOT_BIN": str(binary)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         str(REPO / "tests/test_faults.py"), "-k", rows],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _summary(out: subprocess.CompletedProcess) -> str:
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")][2:]
    tail = out.stdout.strip().splitlines()[-1:] or [""]
    return "\n".join(rows + tail)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_fails_its_rows_and_the_real_binary_passes(mutant):
    if not REAL.is_file():
        pytest.skip(f"ecs-boot binary not found at {REAL}: run `cargo build`")
    try:
        binary = build.build(mutant)
    except build.PatchDoesNotApply as err:
        pytest.fail(str(err))

    broken = run_rows(binary, mutant.rows)
    ran = "passed" in broken.stdout or "failed" in broken.stdout
    assert ran and " 0 selected" not in broken.stdout, (
        f"-k {mutant.rows!r} selects no row:\n{broken.stdout[-2000:]}")
    assert broken.returncode == 1 and "failed" in broken.stdout, (
        f"mutant {mutant.name} ({mutant.breaks}) passed rows {mutant.rows!r}: the matrix "
        f"cannot see this bug\n{_summary(broken)}")

    real = run_rows(REAL, mutant.rows)
    assert real.returncode == 0, (
        f"the real binary fails rows {mutant.rows!r}:\n{_summary(real)}\n"
        f"{real.stdout[-3000:]}")
