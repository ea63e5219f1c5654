"""The one call into streamlit-webrtc, kept small so tests can replace it.

AppTest cannot run the webrtc component (`Mock object has no attribute '_session_mgr'`):
tests monkeypatch `ui.webcam.webrtc_stream`; pages must call it as `webcam.webrtc_stream(...)`
(module attribute looked up at call time).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from fer_core.errors import FerError


def preload_webrtc_native() -> None:
    """Load libsrtp (aiortc's SRTP binding) before TensorFlow can be imported.

    Measured: `import tensorflow` then `import pylibsrtp` segfaults the process in
    `srtp_init()` (TF 2.21 and pylibsrtp's bundled crypto clash); the other order works.
    The app calls this first thing on every run (13 ms, once); it is a no-op once TF is in.
    """
    if "pylibsrtp" in sys.modules or "tensorflow" in sys.modules:
        return
    try:
        import pylibsrtp  # noqa: F401
    except ImportError:  # pragma: no cover - streamlit-webrtc not installed
        pass


def webrtc_ready() -> bool:
    """False when TensorFlow was loaded before libsrtp: starting WebRTC now would crash the server."""
    return "pylibsrtp" in sys.modules or "tensorflow" not in sys.modules


def webrtc_stream(
    *,
    key: str,
    queued_frames_callback: Callable[[list[Any]], Any],
    rtc_configuration: dict[str, Any],
    media_stream_constraints: dict[str, Any] | None = None,
) -> Any:
    """Start/keep the SENDRECV stream; returns streamlit-webrtc's context (ctx.state.playing).

    Frames are processed off the event loop (async processing); `queued_frames_callback` gets the
    camera frames that arrived since its last call (fer_core.inference.webrtc.webrtc_queued_callback).
    """
    if not webrtc_ready():
        raise FerError("The live stream cannot start in this server process (TensorFlow was loaded before the "
                       "WebRTC libraries). Restart the app with `streamlit run streamlit_app.py`; use Snapshot meanwhile.")
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    return webrtc_streamer(
        key=key,
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration,
        queued_video_frames_callback=queued_frames_callback,
        media_stream_constraints=media_stream_constraints or {"video": True, "audio": False},
        async_processing=True,
    )
