#!/usr/bin/env python3
"""Where the boot path's instructions go: `ecs-boot render` (identity and tags from IMDS, registry
credentials from S3, ecs.config rendered: the code `run` takes before ecs.config is on disk) under
`valgrind --tool=callgrind`, against the same emulators as bench.py's ecs.config row.

Instruction counts do not depend on the machine's load, unlike the row's milliseconds, so this is
the profile issue 23 asks for behind the "≥ 50× user data" row. It needs a binary with symbols:

    CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \\
        cargo build --release --no-default-features --bin ecs-boot --target-dir target/profile
    python3 bench/profile_boot.py --binary target/profile/release/ecs-boot

Prints the total, the share of each crate (self cost, by the first path segment of each demangled
symbol) and the heaviest functions (inclusive); writes bench/results/profile-boot.md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from harness.imds import FakeImds  # noqa: E402
from harness.moto_ext import MotoServer  # noqa: E402
from harness.procs import base_env  # noqa: E402
from harness.world import build_world, follow_lifecycle  # noqa: E402

from bench import write_config  # noqa: E402 (bench/bench.py, beside this file)

# callgrind runs the binary ~50× slower: waits that are short on purpose elsewhere get room here.
CONFIG = '[tags]\nwait = "60s"\n[imds]\ntimeout = "30s"\n[docker]\nengine_wait = "10ms"\n'
PLUMBING = {"std", "core", "alloc", "tokio", "futures_util", "futures_core", "libc / C / unknown",
            "tracing", "tracing_core", "ecs_boot_main"}
LINE = re.compile(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(?:\*\s+)?(\S.*?)\s*(?:\[.*\])?$")


def annotate(out: Path, inclusive: bool) -> list[tuple[int, str]]:
    """(instructions, "file:function") rows of callgrind_annotate, heaviest first."""
    text = subprocess.run(
        ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100",
         str(out)], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m and ":" in m.group(2) and not m.group(2).startswith(("Ir", "PROGRAM", "Events")):
            rows.append((int(m.group(1).replace(",", "")), m.group(2)))
    return rows


def crate_of(symbol: str) -> str:
    """The crate a demangled symbol belongs to: `aws_config::x::y` -> aws_config;
    `<rustls::X as core::Y>::z` -> rustls; C code (aws-lc, libc) by its file or as `C`."""
    function = symbol.split(":", 1)[1] if ":" in symbol.split("::", 1)[0] else symbol
    m = re.match(r"<*&?(?:mut )?(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)::", function)
    if m:
        return m.group(1)
    if "aws-lc" in symbol or "aws_lc" in symbol:
        return "aws-lc (C)"
    return "libc / C / unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="an ecs-boot built with symbols")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", default=str(REPO / "bench/results/profile-boot.md"))
    args = ap.parse_args()
    binary = Path(args.binary).resolve()
    moto = MotoServer().start()
    imds = FakeImds(moto_url=moto.url).start()
    try:
        world = build_world(moto.url, imds)
        follow_lifecycle(imds, world.instance_id)
        with tempfile.TemporaryDirectory(prefix="ecs-boot-profile-") as tmp:
            work = Path(tmp)
            cfg = work / "config.toml"
            write_config(cfg, CONFIG, world)
            env = base_env(moto.url, imds.url, work / "home")
            (work / "home").mkdir()
            out = work / "callgrind.out"
            run = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                 str(binary), "--root", str(work / "root"), "--config", str(cfg), "render"],
                env=env, capture_output=True, text=True, timeout=600)
            if run.returncode != 0:
                print(run.stderr[-3000:], file=sys.stderr)
                return 1
            self_rows = annotate(out, inclusive=False)
            incl_rows = annotate(out, inclusive=True)
    finally:
        imds.stop()
        moto.stop()
    total = sum(n for n, _ in self_rows)
    crates: Counter[str] = Counter()
    for n, sym in self_rows:
        crates[crate_of(sym)] += n
    lines = [f"# `ecs-boot render` under callgrind ({binary.name}, {total:,} instructions)", "",
             "Self cost by crate:", "", "| crate | instructions | share |", "|---|---:|---:|"]
    for crate, n in crates.most_common(args.top):
        lines.append(f"| {crate} | {n:,} | {100 * n / total:.1f} % |")
    lines += ["", f"Heaviest {args.top} functions, inclusive (runtime plumbing left out):", "",
              "| instructions | share | function |", "|---:|---:|---|"]
    # The runtime's frames (main, block_on, the blocking pool's threads, closures) enclose
    # everything: the rows worth reading are the work, named by the crate that does it.
    shown = [(n, sym) for n, sym in incl_rows if crate_of(sym) not in PLUMBING]
    for n, sym in shown[: args.top]:
        name = sym.split(":", 1)[1] if sym.startswith(("???", "/", ".")) else sym
        lines.append(f"| {n:,} | {100 * n / total:.1f} % | `{name[:140]}` |")
    report = "\n".join(lines) + "\n"
    Path(args.out).write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
