"""Batch: label a corpus (a folder on the server or an uploaded zip of photos and videos) in the
background; progress, then the results and downloads. The engine is fer_core.corpus."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import streamlit as st

from fer_core.corpus.job import BatchSettings
from fer_core.corpus.jobs import CORPUS_JOBS
from fer_core.errors import FerError
from ui.batch_view import show_result, show_running
from ui.classifiers import load_classifier, model_and_detector
from ui.page import friendly_errors, page_header

JOB_KEY = "batch_job"  # session_state: the job this session looks at

page_header(
    "Batch", ":material/dataset:",
    "Label a whole corpus: a folder on this server (photos and videos, read recursively) or a zip you upload. "
    "Every face of every photo, and of the sampled frames of every video, becomes a row of a Parquet table. "
    "The job runs in the background: leave the page, come back, cancel and resume. For millions of files or a "
    "Ray cluster: `python -m fer_core batch` (docs/SCALE.md).",
)

run, detector_name = model_and_detector("batch_run", "batch_detector")
where = st.radio("Files", ["A folder on this server", "Upload a zip"], horizontal=True, key="batch_where")
folder_text, upload = "", None
if where == "A folder on this server":
    folder_text = st.text_input("Folder, zip, glob or list file on the server", key="batch_folder",
                                placeholder="/data/interviews   or   /data/shots/**/*.jpg",
                                help="Read recursively; hidden files are left out. A .txt list names one file a line.")
else:
    upload = st.file_uploader("Drop a zip of photos and videos", type=["zip"], key="batch_zip",
                              help="Up to the server's upload limit (1 GB); larger corpora: a folder on the server.")
c1, c2, c3 = st.columns([2, 2, 1])
has_ray = importlib.util.find_spec("ray") is not None
engine = c1.radio("Engine", ["local", "ray"], horizontal=True, key="batch_engine",
                  help="local: worker processes on this machine. ray: Ray Data (a local Ray started for the job)"
                       + ("" if has_ray else ". Not installed here: pip install -r requirements-ray.txt"))
rate = c2.select_slider("Video frames per second", ["all", 10, 5, 2, 1, 0.5], value=2, key="batch_rate",
                        help="Frames of each video analysed per second of video.")
if run is None:
    st.stop()

if c3.button("Start", type="primary", icon=":material/play_arrow:", key="batch_go"):
    with friendly_errors("Starting the job"):
        if engine == "ray" and not has_ray:
            raise FerError("the Ray engine is not installed here: pip install -r requirements-ray.txt")
        if upload is not None:
            srcs = [str(CORPUS_JOBS.save_upload(upload.getvalue(), upload.name))]
        elif folder_text.strip():
            srcs = [str(Path(folder_text.strip()).expanduser())]
        else:
            raise FerError("name a folder on the server, or upload a zip")
        settings = BatchSettings(detector=detector_name, max_fps=None if rate == "all" else float(rate))
        job = CORPUS_JOBS.start(srcs, run.run_id, engine=engine, settings=settings,
                                classifier=lambda: load_classifier(run))
        st.session_state[JOB_KEY] = job.key

recent = CORPUS_JOBS.recent()
if recent and JOB_KEY not in st.session_state:
    st.session_state[JOB_KEY] = recent[0].key  # a reload shows the latest job
key = st.session_state.get(JOB_KEY)
job = CORPUS_JOBS.get(key) if key else None
if recent:
    keys = [j.key for j in recent]
    if key in keys:
        what = {j.key: ", ".join(Path(s).name for s in (j.manifest or {}).get("sources") or []) for j in recent}
        st.session_state["batch_recent"] = key  # the picker shows the job in view

        def _pick() -> None:
            st.session_state[JOB_KEY] = st.session_state["batch_recent"]

        st.selectbox("Jobs on this server", keys, key="batch_recent", on_change=_pick,
                     format_func=lambda k: f"{k} · {what.get(k) or '?'}")
if job is None:
    st.info("Name a folder (or upload a zip) and press **Start**.", icon=":material/dataset:")
elif job.state == "running":
    show_running(job)
elif job.state == "failed" and not job.manifest:
    st.error(f"The job could not run: {job.error}", icon=":material/error:")
else:
    with friendly_errors("Showing the results"):
        if show_result(job):
            manifest = job.manifest or {}
            with friendly_errors("Resuming the job"):
                CORPUS_JOBS.start([], None, engine=(manifest.get("runs") or [{}])[-1].get("engine", "local"),
                                  classifier=lambda: load_classifier(run) if run.run_id == manifest["model"]["run_id"]
                                  else None, resume_key=job.key)
                st.rerun()
