"""Webcam: live emotion recognition on the camera stream (streamlit-webrtc), or a snapshot.

Frames are processed in streamlit-webrtc's callback thread by fer_core.inference.realtime.FramePipeline
(detect, track, classify in one batch, smooth, draw); this page only configures it and shows
its FPS and latency.
"""

from __future__ import annotations

import math

import streamlit as st

from fer_core.errors import FerError
from fer_core.inference.realtime import DEFAULT_CLASSIFY_EVERY, DEFAULT_DETECT_EVERY, DEFAULT_DOWNSCALE_WIDTH
from fer_core.inference.realtime import DEFAULT_SMOOTHING_WINDOW
from fer_core.inference.webrtc import rtc_configuration
from ui import webcam
from ui.classifiers import load_classifier, model_and_detector
from ui.page import friendly_errors, page_header
from ui.predict_view import badge, predict_and_show, uncertain_slider

page_header(
    "Webcam", ":material/videocam:",
    "Live emotion recognition: press START and allow the camera. Every face gets a box, its emotion and "
    "confidence, smoothed over a few frames so labels do not flicker. No camera stream? Use Snapshot.",
)

run, detector_name = model_and_detector("cam_model", "cam_detector")
if run is None:
    st.stop()

mode = st.segmented_control("Mode", ["Live", "Snapshot"], key="cam_mode", default="Live") or "Live"

classifier = None
with friendly_errors("Loading the model", hint="Pick another model, or retrain this one on the Train page."):
    classifier = load_classifier(run)
if classifier is None:
    st.stop()

if mode == "Snapshot":
    shot = st.camera_input("Take a picture", key="cam_snapshot", help="One photo from your camera, analysed like the Predict page.")
    if shot is not None:
        with friendly_errors("Analysing the snapshot"):
            predict_and_show([(shot.name or "snapshot.jpg", shot.getvalue())], classifier, detector_name,
                             whole_image=False, gradcam=False, key_prefix="snap")
    st.stop()

# --------------------------------------------------------------------------- live

with st.expander("Settings", icon=":material/tune:"):
    s1, s2, s3, s4, s5 = st.columns(5)
    smoothing = s1.slider("Smoothing (frames)", 1, 15, DEFAULT_SMOOTHING_WINDOW, key="cam_smooth",
                          help="Average each face's probabilities over this many frames.")
    detect_every = s2.slider("Detect every n-th frame", 1, 6, DEFAULT_DETECT_EVERY, key="cam_every",
                             help="Track faces in between: higher is faster, slower to notice new faces.")
    classify_every = s3.slider("Classify every n-th frame", 1, 6, DEFAULT_CLASSIFY_EVERY, key="cam_classify",
                               help="Each known face is classified on every n-th frame and keeps its smoothed "
                                    "label in between; a new face is classified at once. Higher is lighter on "
                                    "the CPU with many faces.")
    width = s4.select_slider("Detection width (px)", sorted({240, 320, 480, 640, 960, DEFAULT_DOWNSCALE_WIDTH}),
                             DEFAULT_DOWNSCALE_WIDTH, key="cam_width")
    show_fps = s5.toggle("FPS on video", value=True, key="cam_fps")
    uncertain_below = uncertain_slider("cam_uncertain")

try:
    config, origin = rtc_configuration(st.secrets)
except FerError as exc:
    st.error(f"The WebRTC configuration is invalid: {exc}\n\nFix FER_RTC_CONFIGURATION (or the "
             "`rtc_configuration` secret); using no ICE servers (works on this machine / LAN) meanwhile.",
             icon=":material/settings_ethernet:")
    config, origin = {"iceServers": []}, "default"


def session_pipeline():
    """One FramePipeline per browser session (it keeps tracks); reconfigured on every rerun."""
    from fer_core.inference.faces import make_detector
    from fer_core.inference.realtime import FramePipeline
    from fer_core.inference.webrtc import webrtc_queued_callback

    state = st.session_state.get("cam_pipeline_state")
    if state is None or state["detector_name"] != detector_name:
        # This session's own detector: the pipeline sets its detection width (downscale_width).
        detector = make_detector(detector_name)
        if state is None:
            pipeline = FramePipeline(detector, classifier)
            state = {"pipeline": pipeline, "callback": webrtc_queued_callback(pipeline)}
        else:
            state["pipeline"].configure(detector=detector)
        state["detector_name"] = detector_name
        st.session_state["cam_pipeline_state"] = state
    pipeline = state["pipeline"]
    if state.get("run_id") != run.run_id:
        pipeline.configure(classifier=classifier)
        state["run_id"] = run.run_id
    pipeline.configure(smoothing_window=smoothing, detect_every=detect_every, classify_every=classify_every,
                       downscale_width=width, show_fps=show_fps, uncertain_below=uncertain_below)
    return pipeline, state["callback"]


pipeline = callback = None
with friendly_errors("Setting up the face detector", hint="Choose another detector."):
    pipeline, callback = session_pipeline()
if pipeline is None:
    st.stop()

video_col, stats_col = st.columns([3, 2], gap="large")
ctx = None
with video_col, friendly_errors("Starting the live stream"):
    ctx = webcam.webrtc_stream(
        key="fer-webcam",
        queued_frames_callback=callback,
        rtc_configuration=config,
        media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False},
    )
st.caption(f"ICE servers: {len(config.get('iceServers', []))} ({origin}). Set FER_RTC_CONFIGURATION or the "
           "`rtc_configuration` secret to use STUN/TURN across networks.")


def fmt(v: float, spec: str) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def ms(v: float | None) -> str:
    text = fmt(v, ".0f")
    return text if text == "—" else f"{text} ms"


@st.fragment(run_every=1.0)
def live_stats() -> None:
    playing = bool(getattr(getattr(ctx, "state", None), "playing", False))
    s = pipeline.stats()
    m = st.columns(3)
    m[0].metric("camera FPS", fmt(s.get("camera_fps"), ".1f"),
                help="Frames per second your camera's stream brings to the server. Each is answered with "
                     "the newest analysed frame.")
    m[1].metric("analysed FPS", fmt(s.get("fps"), ".1f"),
                help="Frames per second detected, classified and drawn. A frame that arrives while the "
                     "previous one is still being analysed is dropped, not queued, so the picture never lags.")
    m[2].metric("faces", str(s.get("faces", 0)))
    m = st.columns(3)
    m[0].metric("latency p50", ms(s.get("latency_ms_p50")), help="Time to detect, classify and draw one frame (median).")
    m[1].metric("latency p95", ms(s.get("latency_ms_p95")), help="95 in 100 frames are analysed within this time.")
    m[2].metric("dropped", f"{s.get('stale_frames', 0):,}", help="Frames skipped because a newer one had arrived.")
    st.caption(f"{s.get('frames', 0):,} frames processed")
    results = list(getattr(pipeline, "last_results", []) or [])
    if playing and results:
        for r in results:
            st.html(f"face {r.track_id} &nbsp; {badge(r.label, r.confidence, uncertain_below)}")
    elif not playing:
        st.caption("Press START above (allow the camera in the browser) to begin.")
    if s.get("last_error"):
        st.caption(f"last frame error: {s['last_error']}")


with stats_col:
    live_stats()
