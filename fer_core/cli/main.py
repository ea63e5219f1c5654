"""Command line: `python -m fer_core data|train|evaluate|predict|video|batch|runs|import|conventions|export`.

Heavy imports (TensorFlow, OpenCV models) happen inside each command, so `--help` is
instant; commands that load models import TensorFlow first without its start-up log lines
(fer_core.quiet_import). Errors meant for the user (fer_core.errors.FerError, bad settings) print as
`error: ...` with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fer_core.cli import batch, data, evaluate, models, predict, train, video
from fer_core.errors import EXIT_BUSY, EXIT_ERROR, FerError, TrainingBusyError
from fer_core.quiet_import import import_tensorflow_quietly


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fer_core", description="fer-studio: facial emotion recognition on FER-2013.")
    sub = p.add_subparsers(dest="command", required=True)

    for module in (data, train, evaluate, predict, video, batch, models):
        module.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    # Progress bars redraw many times a second: on a terminal that is one line, in a pipe or a
    # log file it is hundreds. Without a terminal, print per-epoch lines at most.
    args.progress_bars = not getattr(args, "no_progress", True) and sys.stderr.isatty()
    loads = getattr(args, "loads_models", False)
    if loads(args) if callable(loads) else loads:
        import_tensorflow_quietly()  # its start-up log lines are not the command's output
    try:
        return int(args.func(args) or 0)
    except TrainingBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except FerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
