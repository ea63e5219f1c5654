"""Emotions over time in a video file: the webcam's FramePipeline run over every (sampled) frame.

    result = analyse_video("talk.mp4", classifier, detector,
                           VideoOutputs(csv="frames.csv", summary="tracks.json", video="annotated.mp4"))

One pass, frames streamed (never the whole clip in memory): each sampled frame goes through the
same detect-every-n / track / smooth pipeline as the webcam, so a face keeps one track id through
the clip. Written as it goes: the per-frame table (CSV, one row per face per processed frame),
the annotated copy (boxes, labels and track ids held between processed frames; every source
frame kept, at its own time, with the sound). At the end: the per-track summary (JSON), and
the table as Parquet when asked. A cancel (`cancel` event, Ctrl-C) ends the pass early and
keeps what was done, complete and playable.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_core.inference.faces import FaceDetector
from fer_core.inference.frames import ProbabilityClassifier
from fer_core.inference.overlay import draw_face
from fer_core.inference.realtime import DEFAULT_DETECT_EVERY, DEFAULT_DOWNSCALE_WIDTH, DEFAULT_SMOOTHING_WINDOW, FramePipeline
from fer_core.inference.results import FacePrediction
from fer_core.inference.video_io import AnnotatedWriter, VideoInfo, VideoLimits, VideoReader, probe
from fer_core.labels import FER_LABELS

COLUMNS = ["frame", "time_s", "track_id", "x", "y", "w", "h", *(f"p_{n}" for n in FER_LABELS), "label", "confidence"]


@dataclass(frozen=True)
class VideoOptions:
    every_n: int = 1  # process every n-th frame
    max_fps: float | None = None  # and at most this many frames per second of video
    detect_every: int | None = None  # of the processed frames (tracking in between); None: the webcam's
    # default when every frame is analysed, every analysed frame when sampling (frames far apart)
    downscale_width: int = DEFAULT_DOWNSCALE_WIDTH  # detection width
    smoothing_window: int = DEFAULT_SMOOTHING_WINDOW
    max_faces: int = 8
    uncertain_below: float = 0.0  # faces under this confidence are drawn as "uncertain" in the annotated copy


@dataclass(frozen=True)
class VideoOutputs:
    csv: str | Path | None = None
    parquet: str | Path | None = None
    summary: str | Path | None = None
    video: str | Path | None = None


@dataclass
class TrackSummary:
    track_id: int
    first_s: float
    last_s: float
    seconds: float = 0.0
    label_seconds: dict[str, float] = field(default_factory=lambda: {n: 0.0 for n in FER_LABELS})

    def add(self, label: str, time_s: float, seconds: float) -> None:
        self.last_s = max(self.last_s, time_s + seconds)
        self.seconds += seconds
        self.label_seconds[label] += seconds

    def as_dict(self) -> dict[str, Any]:
        share = {n: round(s / self.seconds, 4) if self.seconds else 0.0 for n, s in self.label_seconds.items()}
        return {"track_id": self.track_id, "first_s": round(self.first_s, 3), "last_s": round(self.last_s, 3),
                "seconds": round(self.seconds, 3), "dominant": max(share, key=share.get) if self.seconds else None,
                "share": share}


@dataclass
class VideoResult:
    info: VideoInfo
    frames_read: int = 0
    frames_processed: int = 0
    rows: int = 0
    seconds: float = 0.0  # wall time of the analysis
    stopped: str | None = None  # "cancelled" / "interrupted" when the pass ended early
    notes: list[str] = field(default_factory=list)
    tracks: list[TrackSummary] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames_read / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {"video": self.info.as_dict(), "frames_read": self.frames_read, "frames_processed": self.frames_processed,
                "rows": self.rows, "analysis_seconds": round(self.seconds, 2), "frames_per_second": round(self.fps, 2),
                "stopped": self.stopped, "notes": self.notes, "tracks": [t.as_dict() for t in self.tracks]}


class _Sampler:
    """Which frames are processed: every n-th, and at most max_fps per second of video."""

    def __init__(self, options: VideoOptions):
        self.every_n = max(1, int(options.every_n))
        self.interval = 1.0 / options.max_fps if options.max_fps else 0.0
        self.next_time = 0.0

    def __call__(self, index: int, time_s: float) -> bool:
        if index % self.every_n or time_s + 1e-6 < self.next_time:
            return False
        self.next_time = time_s + self.interval if self.interval else 0.0
        return True


def _row(index: int, time_s: float, face: FacePrediction) -> list[Any]:
    b = face.box
    return [index, round(time_s, 4), face.track_id, b.x, b.y, b.w, b.h,
            *(round(float(p), 4) for p in face.probabilities), face.label, round(face.confidence, 4)]


def analyse_video(
    path: str | Path,
    classifier: ProbabilityClassifier,
    detector: FaceDetector,
    outputs: VideoOutputs,
    options: VideoOptions | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    cancel: threading.Event | None = None,
    limits: VideoLimits | None = None,
    on_face: Callable[[int, float, FacePrediction], None] | None = None,
) -> VideoResult:
    """Analyse one video file; see the module docstring. `progress(frames_read, frames_total, fps)`
    is called about twice a second; `on_face(frame, time_s, face)` gets each row of the table
    as it is written (the corpus engine's rows). Raises VideoError (a FerError) for a file it cannot analyse."""
    options = options or VideoOptions()
    info = probe(path, limits)
    result = VideoResult(info)
    sampling = options.every_n > 1 or bool(options.max_fps)
    detect_every = options.detect_every or (1 if sampling else DEFAULT_DETECT_EVERY)
    pipeline = FramePipeline(detector, classifier, detect_every, options.downscale_width,
                             options.smoothing_window, max_faces=options.max_faces, draw=False, copy=False)
    csv_path = Path(outputs.csv) if outputs.csv else None
    if csv_path is None and outputs.parquet:
        csv_path = Path(outputs.parquet).with_suffix(".partial.csv")
    tracks: dict[int, TrackSummary] = {}
    sampler = _Sampler(options)
    started = time.perf_counter()
    last_report = 0.0
    held: list[FacePrediction] = []  # the latest processed frame's faces, drawn until the next one
    with VideoReader(info) as reader, _open_csv(csv_path) as table:
        writer = (AnnotatedWriter(outputs.video, info, audio_from=reader.audio_stream)
                  if outputs.video else None)
        sink = writer.add_audio_packet if writer is not None and writer.audio_out is not None else None
        try:
            for frame in reader.frames(wanted=lambda i, t: writer is not None or sampler(i, t), audio_sink=sink):
                if cancel is not None and cancel.is_set():
                    result.stopped = "cancelled"
                    break
                analysed = frame.image is not None and (writer is None or sampler(frame.index, frame.time_s))
                if analysed:
                    _, held = pipeline.process(frame.image)
                    if detect_every == 1:  # frames far apart: a track missed in this frame is not in it
                        held = [f for f in held if f.detected]
                    result.frames_processed += 1
                for face in held:  # time on screen: every frame a face is shown with, to the next frame
                    summary = tracks.setdefault(face.track_id, TrackSummary(face.track_id, frame.time_s, frame.time_s))
                    summary.add(face.label, frame.time_s, frame.duration_s)
                if writer is not None and frame.image is not None:
                    for face in held:
                        draw_face(frame.image, face.box, face.label, face.confidence, face.track_id,
                                  uncertain=face.confidence < options.uncertain_below)
                    writer.write(frame.image, frame.time_s)
                if analysed:  # after the frame is in the copy: a Ctrl-C never leaves a row without its frame
                    for face in held:
                        if table is not None:
                            table.writerow(_row(frame.index, frame.time_s, face))
                        if on_face is not None:
                            on_face(frame.index, frame.time_s, face)
                        result.rows += 1
                result.frames_read += 1
                now = time.perf_counter()
                if progress is not None and now - last_report >= 0.5:
                    last_report = now
                    progress(result.frames_read, info.frames, result.frames_read / max(now - started, 1e-9))
        except KeyboardInterrupt:
            result.stopped = "interrupted"
        finally:
            if writer is not None:
                writer.close()
                result.outputs["video"] = str(writer.path)
                if writer.audio_note:
                    result.notes.append(writer.audio_note)
        if result.stopped is None and result.frames_read < 0.9 * info.frames:
            result.notes.append(f"the file ends after {result.frames_read} of about {info.frames} frames: it may be "
                                "cut short")
        if reader.truncated:
            result.notes.append(f"the file ends early: decoding stopped at frame {result.frames_read} ({reader.truncated})")
    result.seconds = time.perf_counter() - started
    result.tracks = sorted(tracks.values(), key=lambda t: t.track_id)
    if pipeline.stats()["errors"]:
        result.notes.append(f"{pipeline.stats()['errors']} frame(s) failed: {pipeline.stats()['last_error']}")
    _finish_outputs(result, outputs, csv_path)
    if progress is not None:
        progress(result.frames_read, result.frames_read, result.fps)
    return result


class _NoTable:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


class _CsvTable:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in __exit__
        self.writer = csv.writer(self.file)
        self.writer.writerow(COLUMNS)

    def __enter__(self) -> Any:
        return self.writer

    def __exit__(self, *exc: Any) -> None:
        self.file.close()


def _open_csv(path: Path | None) -> Any:
    return _CsvTable(path) if path is not None else _NoTable()


def read_table(csv_path: str | Path) -> Any:
    """The per-frame table as a pandas DataFrame (the columns of COLUMNS)."""
    import pandas as pd

    return pd.read_csv(csv_path, dtype={"label": "string"})


def _finish_outputs(result: VideoResult, outputs: VideoOutputs, csv_path: Path | None) -> None:
    if outputs.parquet and csv_path is not None:
        read_table(csv_path).to_parquet(outputs.parquet, index=False)
        result.outputs["parquet"] = str(outputs.parquet)
        if not outputs.csv:
            csv_path.unlink(missing_ok=True)
    if outputs.csv:
        result.outputs["csv"] = str(outputs.csv)
    if outputs.summary:
        Path(outputs.summary).parent.mkdir(parents=True, exist_ok=True)
        Path(outputs.summary).write_text(json.dumps(result.summary(), indent=2), encoding="utf-8")
        result.outputs["summary"] = str(outputs.summary)
