"""The mutants and the fault-matrix rows each must fail (and the real binary must pass)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Patch:
    pattern: str          # a Python regex over one source file
    replacement: str
    count: str = "one"    # "one": exactly one match across src/; "some": at least one


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str           # the headline invariant it breaks
    patches: tuple[Patch, ...]
    rows: str             # pytest -k expression over test_faults.py ids: rows that must fail


MUTANTS = (
    Mutant(
        "double-completion",
        "each lifecycle transition completed at most once",
        # A restart takes the previous state for another boot's and carries nothing over
        # (completions, any intent recorded before one), so it completes again.
        (Patch(r"&&\s*same_boot\(\s*&prev\s*,\s*booted_at\s*\)",
               "&& (same_boot(&prev, booted_at) && false)"),),
        "Crash and after and hook",
    ),
    Mutant(
        "non-atomic-write",
        "ecs.config is absent, the old file byte for byte, or complete",
        # Write in place: truncate the target, then write into it (rename onto itself is a
        # no-op), which is what a naive writer does.
        (Patch(r"let\s+tmp\s*=\s*[^;]*\.tmp\.[^;]*;", "let tmp = path.to_path_buf();"),
         Patch(r"\.create_new\(\s*true\s*\)", ".create(true).truncate(true)")),
        "Write and opened and config",
    ),
    Mutant(
        "no-fsync",
        "atomic and durable writes (syscall trace)",
        # Every fsync becomes a metadata read: same types, nothing reaches the disk.
        (Patch(r"\.sync_(?:all|data)\(\)", ".metadata().map(|_| ())", count="some"),),
        "Trace and config",
    ),
)
