"""Import TensorFlow without its start-up log lines on stderr.

TensorFlow's C++ runtime writes, while it is imported and before Python can configure anything,
"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR" and an
info line about oneDNN (twice with TensorFlow 2.21), whatever TF_CPP_MIN_LOG_LEVEL says. The CLI
imports TensorFlow through `import_tensorflow_quietly`, which holds file descriptor 2 in a
temporary file during the import and passes on every other line (a real warning or error still
reaches the user; a failed import still raises).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# absl's notice that logging is not configured yet, and info-level (I....) lines.
_NOISE = re.compile(rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                    rb"|I\d{4} [\d:.]+ +\d+ \S+:\d+\] .*)\r?\n?$")


def is_noise(line: bytes) -> bool:
    """Whether one stderr line is TensorFlow start-up chatter (see the module doc)."""
    return _NOISE.match(line) is not None


def import_tensorflow_quietly() -> None:
    """`import tensorflow` with its start-up log lines left out (other stderr output kept)."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = b"".join(line for line in captured.read().splitlines(keepends=True) if not is_noise(line))
            if kept:
                os.write(2, kept)
