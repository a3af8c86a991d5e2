"""The LD_PRELOAD shim (pause.c) that stops ecs-boot in the middle of a file write."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "pause.c"
CACHE = Path(__file__).resolve().parents[3] / ".cache" / "shim"


def build() -> Path:
    """The compiled shim, built once per source version (gcc; .ci/run installs it)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    out = CACHE / f"pause-{digest}.so"
    if out.exists():
        return out
    if not shutil.which("gcc"):
        raise RuntimeError("gcc is needed to build the test shim (apt-get install gcc)")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(SOURCE),
                    "-ldl"], check=True, capture_output=True)
    tmp.rename(out)
    return out


class Pause:
    """`env` makes a run stop at `op` ("open" or "rename") on a file whose name contains
    `match`; `wait(proc)` returns once it stopped there, `resume()` lets it go on."""

    def __init__(self, workdir: Path, op: str, match: str, nth: int = 1):
        self.mark = workdir / "shim-paused"
        self.mark.unlink(missing_ok=True)
        self.env = {"LD_PRELOAD": str(build()), "ECS_BOOT_SHIM_PAUSE": f"{op}:{match}",
                    "ECS_BOOT_SHIM_PAUSE_NTH": str(nth), "ECS_BOOT_SHIM_MARK": str(self.mark)}

    def wait(self, proc, timeout: float = 30) -> str:
        """The paused operation ("open /path"); raises if the run exits first."""
        from ..procs import wait_for

        def paused():
            if self.mark.exists():
                return self.mark.read_text().strip() or None
            if proc.poll() is not None:
                raise AssertionError(f"run exited {proc.returncode} before the pause point")
            return None
        return wait_for(paused, timeout=timeout, interval=0.01, what="the shim's pause")

    def resume(self) -> None:
        self.mark.unlink(missing_ok=True)
