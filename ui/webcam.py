"""The one call into streamlit-webrtc, kept small so tests can replace it.

AppTest cannot run the webrtc component (`Mock object has no attribute '_session_mgr'`):
tests monkeypatch `ui.webcam.webrtc_stream`; pages must call it as `webcam.webrtc_stream(...)`
(module attribute looked up at call time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def webrtc_stream(
    *,
    key: str,
    video_frame_callback: Callable[[Any], Any],
    rtc_configuration: dict[str, Any],
    media_stream_constraints: dict[str, Any] | None = None,
) -> Any:
    """Start/keep the SENDRECV stream; returns streamlit-webrtc's context (ctx.state.playing)."""
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    return webrtc_streamer(
        key=key,
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration,
        video_frame_callback=video_frame_callback,
        media_stream_constraints=media_stream_constraints or {"video": True, "audio": False},
        async_processing=True,
    )
