"""WebRTC glue for the webcam page, without Streamlit: the `rtc_configuration` and the frame callback.

rtc_configuration order: the FER_RTC_CONFIGURATION environment variable (JSON text, or a path to a JSON file),
then a `rtc_configuration` entry from Streamlit secrets (passed in by the page), else
{"iceServers": []}: a LAN/localhost session that needs no STUN/TURN server and never reaches
for public ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_core import settings
from fer_core.errors import FerError

if TYPE_CHECKING:  # pragma: no cover
    from fer_core.inference.realtime import FramePipeline

ENV_VAR = settings.RTC_CONFIGURATION
SECRET_KEY = "rtc_configuration"
DEFAULT_RTC_CONFIGURATION: dict[str, Any] = {"iceServers": []}


def _plain(obj: Any) -> Any:
    """Streamlit secrets are AttrDict-like; turn them into plain dicts/lists."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def validate_rtc_configuration(config: Any, origin: str = "rtc_configuration") -> dict[str, Any]:
    config = _plain(config)
    if not isinstance(config, dict):
        raise FerError(f"{origin} must be a JSON object such as {{\"iceServers\": []}}, got {type(config).__name__}.")
    servers = config.get("iceServers", [])
    if not isinstance(servers, list):
        raise FerError(f"{origin}: \"iceServers\" must be a list of {{\"urls\": ...}} objects.")
    for i, server in enumerate(servers):
        if not isinstance(server, dict) or "urls" not in server:
            raise FerError(f"{origin}: iceServers[{i}] needs a \"urls\" entry (e.g. \"stun:stun.example.org:3478\").")
    config.setdefault("iceServers", [])
    return config


def parse_rtc_configuration(text: str, origin: str = ENV_VAR) -> dict[str, Any]:
    """JSON text, or the path of a JSON file, -> validated configuration dict."""
    raw = text.strip()
    if raw and not raw.startswith("{"):
        path = Path(raw).expanduser()
        if not path.is_file():
            raise FerError(f"{origin} is neither JSON nor the path of a JSON file: {raw[:80]!r}.")
        raw = path.read_text(encoding="utf-8")
        origin = f"{origin} ({path})"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FerError(f"{origin} is not valid JSON ({exc.msg} at position {exc.pos}). "
                       "Example: {\"iceServers\": [{\"urls\": \"stun:stun.example.org:3478\"}]}") from None
    return validate_rtc_configuration(value, origin)


def rtc_configuration(secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """(configuration, where it came from: "env" | "secrets" | "default"). Raises FerError on a bad setting."""
    text = settings.text(ENV_VAR, environ)
    if text:
        return parse_rtc_configuration(text), "env"
    if secrets is not None:
        try:
            value = secrets.get(SECRET_KEY) if hasattr(secrets, "get") else None
        except Exception:  # Streamlit raises when no secrets.toml exists
            value = None
        if value is not None:
            if isinstance(value, str):
                return parse_rtc_configuration(value, origin=f"secret {SECRET_KEY}"), "secrets"
            return validate_rtc_configuration(value, origin=f"secret {SECRET_KEY}"), "secrets"
    return dict(DEFAULT_RTC_CONFIGURATION, iceServers=[]), "default"


def _annotated(pipeline: FramePipeline, frame):
    """av.VideoFrame -> the pipeline's annotated av.VideoFrame (same pts and time base).

    Decodes straight to bgr24 and encodes from bgr24: the only colour conversion is PyAV's own.
    """
    import av

    img = frame.to_ndarray(format="bgr24")
    out, _ = pipeline.process(img)
    new = av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="bgr24")
    new.pts = frame.pts
    if frame.time_base is not None:
        new.time_base = frame.time_base
    return new


def webrtc_queued_callback(pipeline: FramePipeline):
    """A `queued_video_frames_callback` for streamlit-webrtc (async processing), used by the Webcam page.

    streamlit-webrtc hands over every camera frame that arrived while the previous one was being
    processed. Only the newest is worth processing: the older ones are stale, and working through
    them would only add latency. This callback processes the newest, drops the rest, and tells
    the pipeline how many arrived (`frames_arrived`), so the page can show the camera's frame rate
    beside the processed one. The server sends the newest processed frame with every camera frame.
    """

    async def callback(frames: list) -> list:  # list[av.VideoFrame], oldest first
        if not frames:
            return []
        pipeline.frames_arrived(len(frames))
        return [_annotated(pipeline, frames[-1])]

    return callback
