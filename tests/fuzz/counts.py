"""Per-target counts of the fuzz cases that ran (shared by the fuzz tests and tests/fuzz/conftest.py)."""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()


def count(target: str) -> None:
    """Record one generated case of `target` that actually ran."""
    COUNTS[target] += 1
