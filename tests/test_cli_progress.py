"""Progress output of the CLI: bars on a terminal, a few plain lines when piped (logs, `| tail`)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

from tests.cli_helpers import ROOT, run_cli

TRAIN = ("train", "--data", "demo", "--arch", "mini_xception", "--epochs", "2", "--batch-size", "32",
         "--max-train-images", "300", "--no-augment")


def _progress_lines(stderr: str) -> list[str]:
    """stderr without TensorFlow's start-up log lines."""
    return [ln for ln in stderr.splitlines()
            if ln.strip() and not ln.startswith(("WARNING: All log messages", "I0000", "W0000"))]


def test_piped_training_prints_one_line_per_epoch() -> None:
    result = run_cli(*TRAIN)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = _progress_lines(result.stderr)
    assert "\r" not in result.stderr and "batch/s" not in result.stderr  # no tqdm bar redrawn in a log
    assert [ln.split(":")[0] for ln in lines] == ["epoch 1/2", "epoch 2/2"], lines
    assert "val_acc" in lines[-1]


def test_no_progress_prints_none() -> None:
    result = run_cli(*TRAIN, "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _progress_lines(result.stderr) == []


def test_terminal_gets_live_bars() -> None:
    """The same command on a terminal (a pseudo-terminal here) draws tqdm bars that redraw in place."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120-column terminal
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fer_core", *TRAIN], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        rc = proc.wait(300)
    out = b"".join(chunks).decode("utf-8", "replace")
    assert rc == 0, out[-2000:]
    assert "\r" in out and "batch/s" in out, out[-2000:]
    assert "epoch 2/2" in out
