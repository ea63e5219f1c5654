"""Video files in and out (PyAV): probe a file, stream its frames upright with their timestamps,
write a browser-playable annotated copy.

- `probe(path)`: what the file holds (size, duration, frame rate, display size after rotation,
  audio) or a VideoError that says why it cannot be analysed (not a video, audio only, no
  frames, over the limits of `VideoLimits`).
- `VideoReader`: one pass over the container: video packets are decoded (threaded) and yielded as
  `DecodedFrame`s, upright (phone rotation metadata honoured), with their own timestamps
  (variable frame rate kept); audio packets are handed to the writer, so both streams go through
  once and nothing is held in memory.
- `AnnotatedWriter`: H.264 (libx264, yuv420p, `+faststart`) MP4 with each frame at its source
  time; the source audio copied (AAC, MP3, Opus, ALAC) or re-encoded to AAC, else left out.

Frames are BGR uint8 like everywhere else (fer_core.inference.images).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_core.errors import FerError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi")
COPYABLE_AUDIO = ("aac", "mp3", "opus", "alac")  # codecs an MP4 takes as they are
OUTPUT_MAX_SIDE = 1920  # the annotated copy of a larger (4K) video is scaled down to this


class VideoError(FerError):
    """A file that cannot be analysed as a video (the message says why and what to do)."""


@dataclass(frozen=True)
class VideoLimits:
    """What one analysis accepts (docs/LIMITS.md)."""

    max_bytes: int = 4 * 1024**3  # 4 GB
    max_seconds: float = 3 * 3600.0  # 3 hours
    max_pixels: int = 7680 * 4320  # 8K


@dataclass(frozen=True)
class VideoInfo:
    path: str
    size_bytes: int
    codec: str
    width: int  # as displayed (after rotation)
    height: int
    rotation: int  # degrees the stored frames are turned clockwise to be upright: 0, 90, 180, 270
    fps: float  # average frame rate
    duration_s: float
    frames: int  # an estimate when the container does not say
    has_audio: bool

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class DecodedFrame:
    index: int  # 0-based, in decoding order
    time_s: float  # from the first frame
    duration_s: float  # until the next frame (its own duration, or 1 / fps)
    image: np.ndarray | None  # BGR, upright; None when the caller did not ask for it


def _open(path: str | Path) -> Any:
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"{Path(path).name} cannot be opened as a video ({_reason(exc)}): it is not a video file, "
                         "or it is damaged or cut short (an MP4 whose index was not written cannot be read).") from None


def _reason(exc: BaseException) -> str:
    """FFmpeg's words without its errno and file name: '[Errno 1094995529] Invalid data found ...: 'x''."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return text.split(": '", 1)[0][:200].lower()


def _clockwise(rotation: float | int | None) -> int:
    """FFmpeg's display-matrix angle (counter-clockwise) -> degrees to turn clockwise, 0/90/180/270."""
    if not rotation:
        return 0
    return int(round(-float(rotation) / 90.0)) % 4 * 90


def upright(image: np.ndarray, clockwise: int) -> np.ndarray:
    if clockwise == 90:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if clockwise == 180:
        return cv2.rotate(image, cv2.ROTATE_180)
    if clockwise == 270:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def probe(path: str | Path, limits: VideoLimits | None = None) -> VideoInfo:
    """What `path` holds, or a VideoError saying why it cannot be analysed."""
    import av

    limits = limits or VideoLimits()
    p = Path(path)
    if not p.is_file():
        raise VideoError(f"{p} does not exist or is not a file.")
    size = p.stat().st_size
    if size == 0:
        raise VideoError(f"{p.name} is empty.")
    if size > limits.max_bytes:
        raise VideoError(f"{p.name} is {size / 1024**3:.1f} GB; videos up to {limits.max_bytes / 1024**3:.0f} GB "
                         "are analysed. Cut it into parts (e.g. with ffmpeg -ss/-t).")
    with _open(p) as container:
        if not container.streams.video:
            kind = "an audio file" if container.streams.audio else "not a video"
            raise VideoError(f"{p.name} is {kind}: it has no video stream.")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        w, h = int(ctx.width or 0), int(ctx.height or 0)
        rotation = 0
        try:  # the first frame carries the display matrix (phones record turned frames)
            first = next(container.decode(stream))
            rotation = _clockwise(getattr(first, "rotation", 0))
            w, h = first.width, first.height
        except StopIteration:
            raise VideoError(f"{p.name} has a video stream without any frame (truncated or empty).") from None
        except av.error.FFmpegError as exc:
            raise VideoError(f"{p.name} cannot be decoded ({_reason(exc)}); it may be truncated or damaged.") from None
        if w * h > limits.max_pixels or w <= 0 or h <= 0:
            raise VideoError(f"{p.name} is {w}x{h}: videos up to 8K (7680x4320) are analysed.")
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
        duration = _duration_s(container, stream)
        if duration > limits.max_seconds:
            raise VideoError(f"{p.name} lasts {duration / 3600:.1f} h; videos up to {limits.max_seconds / 3600:.0f} h "
                             "are analysed. Cut it into parts, or analyse a part of it.")
        frames = int(stream.frames or 0) or max(1, int(round(duration * fps)))
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(str(p), size, ctx.name, w, h, rotation, round(fps, 3), round(duration, 3), frames,
                         bool(container.streams.audio))


def _duration_s(container: Any, stream: Any) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000.0
    return 0.0


class VideoReader:
    """One pass over a video file (a context manager): upright frames with their times, audio
    packets handed to `audio_sink`. `audio_stream` is the source's first audio stream (or None).

    `wanted(index, time_s) -> bool` says which frames to convert to an image (the others are
    decoded, as H.264 requires, but not converted); every frame is yielded.
    """

    def __init__(self, info: VideoInfo):
        self.info = info
        self.truncated: str | None = None  # why decoding stopped early (a damaged tail), if it did
        self._container: Any = None

    def __enter__(self) -> VideoReader:
        self._container = _open(self.info.path)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._container.close()

    @property
    def audio_stream(self) -> Any:
        return self._container.streams.audio[0] if self._container.streams.audio else None

    def frames(self, wanted: Any = None, audio_sink: Any = None) -> Iterator[DecodedFrame]:
        import av

        video = self._container.streams.video[0]
        video.thread_type = "AUTO"
        audio = self.audio_stream if audio_sink is not None else None
        start: float | None = None
        index = 0
        pending: DecodedFrame | None = None
        step = 1.0 / self.info.fps
        try:
            for packet in self._container.demux(*[s for s in (video, audio) if s is not None]):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        audio_sink(packet)
                    continue
                for frame in packet.decode():
                    t = float(frame.time) if frame.time is not None else index * step
                    start = t if start is None else start
                    t -= start
                    if pending is not None:
                        pending.duration_s = max(1e-6, t - pending.time_s)
                        yield pending
                    image = None
                    if wanted is None or wanted(index, t):
                        image = upright(frame.to_ndarray(format="bgr24"), self.info.rotation)
                    pending = DecodedFrame(index, t, step, image)
                    index += 1
        except av.error.FFmpegError as exc:
            if pending is None:
                raise VideoError(f"{Path(self.info.path).name} cannot be decoded ({_reason(exc)}).") from None
            self.truncated = _reason(exc)  # a damaged tail: keep what decoded
        if pending is not None:
            yield pending
        if index == 0:
            raise VideoError(f"{Path(self.info.path).name} has no frame that decodes.")


class AnnotatedWriter:
    """An H.264 MP4 browsers play (yuv420p, +faststart), each frame at its source time, with audio."""

    def __init__(self, path: str | Path, info: VideoInfo, audio_from: Any = None, crf: int = 23):
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scale = min(1.0, OUTPUT_MAX_SIDE / max(info.width, info.height))
        self.size = (max(2, int(info.width * scale) // 2 * 2), max(2, int(info.height * scale) // 2 * 2))
        self.container = av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream("libx264", rate=Fraction(int(round(max(info.fps, 1) * 1000)), 1000))
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"preset": "veryfast", "crf": str(crf)}
        self.stream.thread_type = "AUTO"
        self.time_base = Fraction(1, 90_000)
        self.last_pts = -1
        self.audio_in, self.audio_out, self.audio_note = None, None, None
        if audio_from is not None:
            self._add_audio(audio_from)

    def _add_audio(self, source_stream: Any) -> None:
        name = source_stream.codec_context.name
        try:
            if name in COPYABLE_AUDIO:
                self.audio_out = self.container.add_stream_from_template(source_stream)
            else:
                self.audio_out = self.container.add_stream("aac", rate=source_stream.codec_context.sample_rate or 48000)
                self.audio_in = source_stream.codec_context
        except Exception as exc:  # noqa: BLE001 - the video is worth more than its sound
            self.audio_out, self.audio_note = None, f"audio left out ({name}: {_reason(exc)})"

    def add_audio_packet(self, packet: Any) -> None:
        if self.audio_out is None:
            return
        try:
            if self.audio_in is None:
                packet.stream = self.audio_out
                self.container.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    self.container.mux(self.audio_out.encode(frame))
        except Exception as exc:  # noqa: BLE001
            self.audio_note = f"audio stopped part-way ({_reason(exc)})"
            self.audio_out = None

    def write(self, image_bgr: np.ndarray, time_s: float) -> None:
        import av

        if (image_bgr.shape[1], image_bgr.shape[0]) != self.size:
            image_bgr = cv2.resize(image_bgr, self.size, interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image_bgr), format="bgr24")
        pts = max(self.last_pts + 1, int(math.floor(time_s / self.time_base)))
        frame.pts, frame.time_base, self.last_pts = pts, self.time_base, pts
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        try:
            self.container.mux(self.stream.encode(None))
            if self.audio_out is not None and self.audio_in is not None:
                self.container.mux(self.audio_out.encode(None))
        finally:
            self.container.close()

    def __enter__(self) -> AnnotatedWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def frame_at(path: str | Path, time_s: float) -> np.ndarray | None:
    """The frame shown at `time_s` (s from the start) of a video, upright, BGR; None past the end."""
    info = probe(path)
    with VideoReader(info) as reader:
        stream = reader._container.streams.video[0]
        if stream.time_base and time_s > 1.0:  # jump to the key frame before, then decode forward
            reader._container.seek(int((time_s - 1.0) / stream.time_base), stream=stream, backward=True)
        last = None
        for frame in reader._container.decode(stream):
            if frame.time is not None and frame.time > time_s + 1e-3 and last is not None:
                break
            last = frame
        return upright(last.to_ndarray(format="bgr24"), info.rotation) if last is not None else None
