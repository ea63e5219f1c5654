"""Video: emotions over time in a video file (annotated copy, chart per face, table, downloads)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fer_core.inference.video import VideoOptions
from fer_core.inference.video_io import VIDEO_EXTENSIONS
from fer_core.inference.video_jobs import VIDEO_JOBS
from fer_core.paths import PROJECT_ROOT
from ui.classifiers import load_classifier, model_and_detector
from ui.page import friendly_errors, page_header
from ui.predict_view import uncertain_slider
from ui.video_view import show_result, show_running

SAMPLE = PROJECT_ROOT / "assets" / "sample_clip.mp4"
JOB_KEY = "video_job"  # session_state: the key of the analysis this session looks at

page_header(
    "Video", ":material/movie:",
    "Drop a video (MP4, MOV, WebM, MKV, AVI): every face is found, followed through the clip with one id, and "
    "labelled frame by frame. You get an annotated copy (with its sound), the emotions of each face over time, "
    "a summary per face and the tables to download. Long videos can be analysed at a few frames per second.",
)

run, detector_name = model_and_detector("video_run", "video_detector")
upload = st.file_uploader("Drop a video here", type=[e.lstrip(".") for e in VIDEO_EXTENSIONS], key="video_upload",
                          help="Up to the server's upload limit (1 GB); longer files: `python -m fer_core video` "
                               "(docs/LIMITS.md).")
c1, c2 = st.columns([3, 2])
rate = c1.select_slider("Frames analysed per second", ["all", 15, 10, 5, 2, 1], value="all", key="video_rate",
                        help="'all' analyses every frame; fewer is faster for long videos (the copy keeps every frame).")
if run is None:
    st.stop()

source: tuple[str, bytes | Path] | None = None
if upload is not None:
    source = (upload.name, upload.getvalue())
elif SAMPLE.is_file():
    source = (SAMPLE.name, SAMPLE)
    c1.caption(f"No video dropped: **Analyse** takes the sample clip ({SAMPLE.name}: two faces, 6 s).")
options = VideoOptions(max_fps=None if rate == "all" else float(rate), uncertain_below=uncertain_slider("video_uncertain", c1))

if source is not None and c2.button("Analyse", type="primary", icon=":material/play_arrow:", key="video_go"):
    classifier = None
    with friendly_errors("Loading the model", hint="Pick another model."):
        classifier = load_classifier(run)
    if classifier is not None:
        def parts():
            from fer_core.inference.faces import make_detector

            return classifier, make_detector(detector_name)

        with friendly_errors("Starting the analysis"):
            job = VIDEO_JOBS.start(source[1], source[0], run.run_id, detector_name, options, parts)
            st.session_state[JOB_KEY] = job.key

job = VIDEO_JOBS.get(st.session_state.get(JOB_KEY, "")) if st.session_state.get(JOB_KEY) else None
if job is None:
    st.info("Drop a video above (or use the sample clip) and press **Analyse**.", icon=":material/movie:")
elif job.state == "running":
    show_running(job)
elif job.state == "failed":
    st.error(f"{job.name} could not be analysed: {job.error}", icon=":material/error:")
else:
    with friendly_errors("Showing the results"):
        show_result(job)
