"""Is the process that wrote a run (or holds the lock) still running? Linux /proc, pid reuse aware."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


def _proc_start_time(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot, Linux /proc), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _proc_is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    rest = stat[stat.rfind(")") + 2 :].split()
    return bool(rest) and rest[0] in ("Z", "X")


def process_alive(pid: int | None, start_time: str | None = None) -> bool:
    """Whether process `pid` runs (and, when known, is the one that started at `start_time`)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return False
    if _proc_is_zombie(pid):
        return False
    if start_time is not None:
        current = _proc_start_time(pid)
        if current is not None and current != start_time:
            return False  # the pid was reused by another process
    return True


def process_identity() -> dict[str, Any]:
    """pid, host and process start time: enough to tell later whether this process still runs."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": _proc_start_time(os.getpid())}
