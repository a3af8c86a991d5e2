"""Builds a mutant: the crate copied to a temp dir, patched, built in debug with a target dir of
its own under .cache/ (seeded with hard links to target/'s dependencies, so only our crate
compiles), and the binary kept by source hash: an unchanged source never builds twice."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from .catalog import Mutant

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "mutants"
TARGET = CACHE / "target"
CRATE_FILES = ("Cargo.toml", "Cargo.lock", "build.rs")


class PatchDoesNotApply(Exception):
    pass


def patched_sources(mutant: Mutant) -> dict[str, str]:
    """src/**/*.rs (relative path -> text) with the mutant's patches applied."""
    sources = {str(p.relative_to(REPO)): p.read_text()
               for p in sorted((REPO / "src").rglob("*.rs"))}
    for patch in mutant.patches:
        regex = re.compile(patch.pattern)
        hits = {path: len(regex.findall(text)) for path, text in sources.items()}
        total = sum(hits.values())
        if total == 0 or (patch.count == "one" and total != 1):
            where = ", ".join(f"{p} ×{n}" for p, n in hits.items() if n) or "nowhere"
            raise PatchDoesNotApply(
                f"mutant {mutant.name}: /{patch.pattern}/ matches {where}; expected "
                f"{'exactly one place' if patch.count == 'one' else 'at least one'} in src/ "
                "(update tests/mutants/catalog.py)")
        for path, n in hits.items():
            if n:
                sources[path] = regex.sub(patch.replacement, sources[path])
    return sources


def _seed_target() -> None:
    """Hard links to the real build's dependencies: cargo reuses them, rebuilding our crate."""
    if (TARGET / "debug" / "deps").exists():
        return
    real = REPO / "target" / "debug"
    (TARGET / "debug").mkdir(parents=True, exist_ok=True)
    for sub in ("deps", "build", ".fingerprint"):
        if (real / sub).exists():
            subprocess.run(["cp", "-al", str(real / sub), str(TARGET / "debug" / sub)],
                           check=True)


def build(mutant: Mutant) -> Path:
    sources = patched_sources(mutant)
    digest = hashlib.sha256()
    for name in CRATE_FILES:
        digest.update((REPO / name).read_bytes())
    for path, text in sorted(sources.items()):
        digest.update(path.encode() + b"\0" + text.encode())
    binary = CACHE / f"{mutant.name}-{digest.hexdigest()[:16]}" / "ecs-boot"
    if binary.exists():
        return binary
    _seed_target()
    # One fixed copy per mutant: cargo keys our crate's artifacts by its path, so a fixed path
    # overwrites the last build's instead of piling up a new set per build.
    crate = CACHE / "src" / mutant.name
    shutil.rmtree(crate, ignore_errors=True)
    (crate / "src").mkdir(parents=True)
    for name in CRATE_FILES:
        shutil.copy(REPO / name, crate / name)
    for path, text in sources.items():
        (crate / path).parent.mkdir(parents=True, exist_ok=True)
        (crate / path).write_text(text)
    env = {**os.environ, "CARGO_TARGET_DIR": str(TARGET), "CARGO_INCREMENTAL": "0",
           "ECS_BOOT_GIT_COMMIT": f"mutant-{mutant.name}"}
    out = subprocess.run(["cargo", "build", "--locked", "--quiet", "--bin", "ecs-boot"],
                         cwd=crate, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"mutant {mutant.name} does not build:\n{out.stderr[-3000:]}")
    for old in CACHE.glob(f"{mutant.name}-*"):
        shutil.rmtree(old, ignore_errors=True)  # binaries of older sources
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(TARGET / "debug" / "ecs-boot", binary)
    return binary
