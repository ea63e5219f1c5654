"""Fuzz-suite plumbing: count the cases each target ran and report them at the end of the run.

Every fuzz test calls `count(target)` once per generated case it actually ran. The totals are
printed in pytest's terminal summary ("fuzz cases run: ...") and written to
artifacts/fuzz_counts.json (git-ignored), so the number of cases is easy to report.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.fuzz.counts import COUNTS

ROOT = Path(__file__).resolve().parents[2]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if not COUNTS:
        return
    total = sum(COUNTS.values())
    terminalreporter.section("fuzz cases run")
    for target, n in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{target:<34} {n:>6}")
    terminalreporter.write_line(f"{'total':<34} {total:>6}")
    try:
        out = ROOT / "artifacts" / "fuzz_counts.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"total": total, "per_target": dict(sorted(COUNTS.items()))}, indent=2) + "\n")
    except OSError:
        pass
