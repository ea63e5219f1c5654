"""Read the original Kaggle FER-2013 CSV: `emotion,pixels,Usage` (35,887 rows of 2,304 pixels).

Usage Training / PublicTest / PrivateTest -> splits "train" / "test" / "private_test"; a CSV without
a Usage column (Kaggle's train.csv) goes entirely to "train". Labels are already FER_LABELS indices.
Rows are read as bytes with a length cap, so one huge row cannot exhaust memory; bad rows are
skipped and counted, never fatal. Items are named "csv row N" (N = 1-based data row, header excluded).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from fer_core.data.types import IMAGE_SIZE, SPLIT_ORDER, LoadReport, Split
from fer_core.errors import DatasetError
from fer_core.labels import NUM_CLASSES

Progress = Callable[[int, int], None]

NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
MAX_ROW_BYTES = 64 * 1024  # a real row is ~9 KB
USAGE_SPLITS: dict[str, str] = {
    "training": "train",
    "train": "train",
    "publictest": "test",
    "test": "test",
    "privatetest": "private_test",
    "private_test": "private_test",
}
_PIXEL_CHARS = b"0123456789 \t"
_STRIP = b" \t\r\n\"'"

CSV_HELP = "Expected the Kaggle FER-2013 CSV with a header row emotion,pixels,Usage (Usage is optional)."


def _read_line(fh: BinaryIO) -> tuple[bytes, bool, int]:
    """(line, too_long, bytes consumed); a line over MAX_ROW_BYTES is drained and returned empty."""
    line = fh.readline(MAX_ROW_BYTES + 1)
    consumed = len(line)
    if len(line) <= MAX_ROW_BYTES or line.endswith(b"\n"):
        return line, False, consumed
    while line and not line.endswith(b"\n"):  # drain the rest of the huge row in bounded pieces
        line = fh.readline(MAX_ROW_BYTES)
        consumed += len(line)
    return b"", True, consumed


def parse_header(line: bytes) -> tuple[int, int, int | None, int]:
    """(emotion column, pixels column, usage column or None, number of columns); DatasetError if wrong."""
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"the CSV header is not text. {CSV_HELP}") from None
    cols = [c.strip().strip("\"'").strip().lower() for c in text.strip("\r\n").split(",")]
    if "emotion" not in cols or "pixels" not in cols:
        shown = ", ".join(c for c in cols[:10] if c) or "(none)"
        raise DatasetError(f"the CSV has columns [{shown}] but needs 'emotion' and 'pixels'. {CSV_HELP}")
    usage = cols.index("usage") if "usage" in cols else None
    return cols.index("emotion"), cols.index("pixels"), usage, len(cols)


def parse_pixels(field: bytes) -> np.ndarray | str:
    """2304 space-separated 0-255 integers -> uint8 (48, 48), or the reason the field is unusable."""
    field = field.strip(_STRIP)
    if not field:
        return "wrong pixel count"
    if field.translate(None, _PIXEL_CHARS):
        return "non-numeric pixels"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            values = np.fromstring(field, dtype=np.int32, sep=" ")
    except (ValueError, DeprecationWarning):
        return "non-numeric pixels"
    if values.size != NUM_PIXELS:
        return "wrong pixel count"
    if values.max() > 255:
        return "pixel value out of range"
    return values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)


def read_csv(
    fh: BinaryIO,
    report: LoadReport,
    progress: Progress | None = None,
    total_bytes: int = 0,
) -> dict[str, Split]:
    """Decode every row of a Kaggle-format CSV opened in binary mode; returns the non-empty splits."""
    header, too_long, done = _read_line(fh)
    if too_long or not header.strip():
        raise DatasetError(f"the CSV has no usable header row. {CSV_HELP}")
    emo_col, pix_col, usage_col, ncols = parse_header(header)
    per_split: dict[str, tuple[list[np.ndarray], list[int], list[str]]] = {}
    row = 0
    if progress:
        progress(0, total_bytes)
    while True:
        line, too_long, consumed = _read_line(fh)
        if not consumed:
            break
        done += consumed
        row += 1
        if progress and row % 512 == 0:
            progress(min(done, total_bytes) if total_bytes else done, total_bytes)
        item = f"csv row {row}"
        if too_long:
            report.add_skipped(item, "row too long")
            continue
        if not line.strip():
            row -= 1  # blank lines (e.g. at the end) are not rows
            continue
        fields = line.rstrip(b"\r\n").split(b",")
        if len(fields) != ncols:
            report.add_skipped(item, "wrong number of fields")
            continue
        try:
            label = int(fields[emo_col].strip(_STRIP))
        except ValueError:
            report.add_skipped(item, "invalid label")
            continue
        if not 0 <= label < NUM_CLASSES:
            report.add_skipped(item, "label out of range")
            continue
        if usage_col is None:
            split = "train"
        else:
            usage = fields[usage_col].strip(_STRIP).decode("utf-8", "replace")
            split = USAGE_SPLITS.get(usage.lower())
            if split is None:
                report.add_skipped(item, f"unknown Usage '{usage[:24]}'")
                continue
        pixels = parse_pixels(fields[pix_col])
        if isinstance(pixels, str):
            report.add_skipped(item, pixels)
            continue
        imgs, labels, sources = per_split.setdefault(split, ([], [], []))
        imgs.append(pixels)
        labels.append(label)
        sources.append(item)
    if progress:
        progress(total_bytes or done, total_bytes or done)
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return {
        name: Split(images=np.stack(imgs), labels=np.array(labels, dtype=np.int64), sources=np.array(sources, dtype=str))
        for name, (imgs, labels, sources) in sorted(per_split.items(), key=lambda kv: order.get(kv[0], 99))
    }


def looks_like_csv(head: bytes) -> bool:
    """True if the first bytes of a file look like a FER-2013 CSV header."""
    first = head.split(b"\n", 1)[0].lower()
    return b"emotion" in first and b"pixels" in first
