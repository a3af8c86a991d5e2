"""pytest plugin for tests/test_faults.py: collects one row per fault (fault, phase, expected,
got, pass) and, at the end of the session, prints the table and the summary line and writes them
to .cache/faults-latest.md (paste into the README's fault matrix).

Loaded by `pytest_plugins = ["faults_plugin"]` in test_faults.py; nothing here runs unless that
module is collected. (PYTEST_DONT_REWRITE: the test module imports it first; it asserts nothing.)
"""

from __future__ import annotations

import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUT = REPO_ROOT / ".cache" / "faults-latest.md"

ROWS: list[dict] = []
# Set by test_faults.py: a partial run (-k) prints its rows but leaves the file's full table.
EXPECTED_ROWS = 0


def record(fault: str, phase: str, expected: str, got: str, passed: bool | None,
           state_lost: bool = False, seconds: float = 0.0, problems=()) -> None:
    """`passed` None: not covered (the reason is in `got`). `problems`: what broke, shown in
    the result cell of a failing row."""
    ROWS.append({"fault": fault, "phase": phase, "expected": expected, "got": got,
                 "passed": passed, "state_lost": state_lost, "seconds": seconds,
                 "problems": list(problems)})


def _cell(text: str, limit: int = 150) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def summary_line() -> str:
    tried = [r for r in ROWS if r["passed"] is not None]
    passed = sum(1 for r in tried if r["passed"])
    lost = sum(1 for r in ROWS if r["state_lost"])
    not_covered = len(ROWS) - len(tried)
    line = f"faults: {len(tried)} tried, {passed} passed, state lost = {lost}"
    return line + (f" ({not_covered} not covered, reasons in the table)" if not_covered else "")


def table() -> str:
    lines = ["| fault | phase | expected | got | result |", "|---|---|---|---|---|"]
    for r in ROWS:
        result = {True: "pass", False: "**FAIL**", None: "not covered"}[r["passed"]]
        if r["state_lost"]:
            result += " (STATE LOST)"
        if r["passed"] is False and r.get("problems"):
            result += ": " + _cell("; ".join(r["problems"]), 200)
        lines.append(f"| {_cell(r['fault'], 60)} | {_cell(r['phase'], 30)} | "
                     f"{_cell(r['expected'], 90)} | {_cell(r['got'])} | {result} |")
    return "\n".join(lines)


# Set by test_faults.py: (invariant, what it observes), listed under the table.
INVARIANTS: list[tuple[str, str]] = []


def invariants() -> str:
    return "Invariants every row keeps, and what each observes:\n\n" + "\n".join(
        f"- **{name}**: {observes}" for name, observes in INVARIANTS)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not ROWS:
        return
    text = table() + "\n\n" + summary_line() + "\n"
    if INVARIANTS:
        text += "\n" + invariants() + "\n"
    terminalreporter.section("fault matrix")
    for line in text.splitlines():
        terminalreporter.write_line(line)
    if len(ROWS) < EXPECTED_ROWS:
        terminalreporter.write_line(f"({len(ROWS)} of {EXPECTED_ROWS} rows ran: "
                                    f"{OUTPUT.relative_to(REPO_ROOT)} left as it was)")
        return
    try:
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        OUTPUT.write_text(f"<!-- tests/test_faults.py, {stamp} -->\n{text}")
        terminalreporter.write_line(f"(written to {OUTPUT.relative_to(REPO_ROOT)})")
    except OSError as err:
        terminalreporter.write_line(f"(cannot write {OUTPUT}: {err})")
