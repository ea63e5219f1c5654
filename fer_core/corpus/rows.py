"""The rows of a corpus job: one per face per photo or sampled video frame, one per file with no
face or that failed (its reason in `error`). Every engine builds them here, so the local and Ray
engines write the same table.

Columns: item (the input's number), source, kind (photo / video), status (face / no face / error),
frame and time_s (videos), face (1, 2, ... in a photo's reading order), track_id (videos: one id
per face through the clip), x, y, w, h, score (the detector's), p_angry ... p_neutral (FER_LABELS
order, whatever order the model has), label, confidence, model (the run id), error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from fer_core.inference.batch_predict import ImageResult
from fer_core.inference.results import FacePrediction
from fer_core.labels import FER_LABELS

PROB_COLUMNS = [f"p_{n}" for n in FER_LABELS]
ROW_SCHEMA = pa.schema(
    [("item", pa.int64()), ("source", pa.string()), ("kind", pa.string()), ("status", pa.string()),
     ("frame", pa.int64()), ("time_s", pa.float64()), ("face", pa.int32()), ("track_id", pa.int32()),
     ("x", pa.int32()), ("y", pa.int32()), ("w", pa.int32()), ("h", pa.int32()), ("score", pa.float32()),
     *((c, pa.float32()) for c in PROB_COLUMNS),
     ("label", pa.string()), ("confidence", pa.float32()), ("model", pa.string()), ("error", pa.string())]
)
COLUMNS = ROW_SCHEMA.names
_EMPTY = {c: None for c in COLUMNS}


def _face_row(base: dict[str, Any], face: FacePrediction) -> dict[str, Any]:
    b = face.box
    return {**_EMPTY, **base, "status": "face", "x": int(b.x), "y": int(b.y), "w": int(b.w), "h": int(b.h),
            "score": float(b.score), **{c: float(p) for c, p in zip(PROB_COLUMNS, face.probabilities)},
            "label": face.label, "confidence": float(face.confidence)}


def failure_row(item: int, source: str, kind: str, error: str | None, model: str) -> dict[str, Any]:
    """The one row of a file that has no face (error None) or could not be read."""
    return {**_EMPTY, "item": item, "source": source, "kind": kind, "model": model,
            "status": "error" if error else "no face", "error": error}


def photo_rows(item: int, result: ImageResult, model: str) -> list[dict[str, Any]]:
    """A photo's rows: one per face (face numbers from 1), or its one failure row."""
    if result.error or not result.faces:
        return [failure_row(item, result.name, "photo", result.reason, model)]
    base = {"item": item, "source": result.name, "kind": "photo", "model": model}
    return [{**_face_row(base, f), "face": f.index + 1} for f in result.faces]


def video_row(item: int, source: str, model: str, frame: int, time_s: float, face: FacePrediction) -> dict[str, Any]:
    base = {"item": item, "source": source, "kind": "video", "model": model, "frame": int(frame),
            "time_s": round(float(time_s), 4)}
    return {**_face_row(base, face), "track_id": None if face.track_id is None else int(face.track_id)}


def to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with the fixed schema (also for no rows)."""
    return pa.Table.from_pylist(list(rows), ROW_SCHEMA)
