"""The Batch page's views: a running corpus job (progress, files/s, faces/s, time left, Cancel) and
a finished one (counts, the per-file table, faces per emotion and per folder, downloads, Resume).
The work itself is fer_core.corpus."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from fer_core.corpus.jobs import CorpusJob
from fer_core.corpus.report import emotion_counts, emotion_figure, folder_figure, sources_table, write_parquet_file

STATE_TEXT = {"cancelled": "Cancelled", "interrupted": "Interrupted", "stopped": "Stopped before the end",
              "failed": "Failed"}


def show_running(job: CorpusJob) -> None:
    """Progress of a running job, redrawn every second; the page reruns when it ends."""

    @st.fragment(run_every=1.0)
    def progress() -> None:
        if job.finished:
            st.rerun()
        p = job.progress
        if p is None:
            st.progress(0.0, text=f"Job {job.key}: listing the files and loading the model…")
        else:
            eta = p.eta_s
            st.progress(p.fraction, text=f"Job {job.key}: {p.done:,} of {p.total:,} files · {p.files_per_s:.1f} files/s"
                        f" · {p.faces_per_s:.1f} faces/s" + (f" · about {eta:.0f} s left" if eta is not None else ""))
            c1, c2, c3 = st.columns(3)
            c1.metric("Files done", f"{p.done:,}")
            c2.metric("Faces", f"{p.faces:,}")
            c3.metric("Could not be read", f"{p.failed:,}")
        if st.button("Cancel", key=f"batch_cancel_{job.key}", icon=":material/cancel:",
                     help="Stops after the files in hand; what is done stays, Resume finishes the job."):
            job.cancel()

    progress()


def show_result(job: CorpusJob) -> bool:
    """A finished job's results; True when the user asked to resume it."""
    manifest = job.manifest or {}
    counts = manifest.get("counts") or {}
    total = (manifest.get("inputs") or {}).get("files", 0)
    resume = False
    if job.state != "done":
        text = STATE_TEXT.get(job.state, job.state)
        st.warning(f"{text}: {counts.get('done', 0):,} of {total:,} files are done"
                   + (f" ({job.error})" if job.error else "") + ". Resume finishes the rest; nothing is done twice.",
                   icon=":material/pause_circle:")
        resume = st.button("Resume", key=f"batch_resume_{job.key}", icon=":material/play_arrow:", type="primary")
    model = (manifest.get("model") or {}).get("name", "?")
    last = (manifest.get("runs") or [{}])[-1]
    st.caption(f"Job **{job.key}** · model {model} · {last.get('engine', '?')} engine · "
               f"{last.get('seconds', 0):.0f} s · results in `{job.folder.root}`")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Files", f"{counts.get('done', 0):,}", help=f"{counts.get('photos', 0):,} photos, "
              f"{counts.get('videos', 0):,} videos")
    c2.metric("Faces", f"{counts.get('faces', 0):,}", help="Faces in photos; faces followed through a video count once")
    c3.metric("No face", f"{counts.get('no_face', 0):,}")
    c4.metric("Could not be read", f"{counts.get('failed', 0):,}")
    table, n_files = sources_table(job.folder)
    emotions = emotion_counts(job.folder)
    if len(emotions):
        left, right = st.columns(2)
        left.plotly_chart(emotion_figure(emotions), key=f"batch_emotions_{job.key}", width="stretch")
        right.plotly_chart(folder_figure(emotions), key=f"batch_folders_{job.key}", width="stretch")
    st.subheader("Files")
    if n_files > len(table):
        st.caption(f"The first {len(table):,} of {n_files:,} files; the downloads hold them all.")
    st.dataframe(table.fillna({"dominant": "", "error": ""}), hide_index=True, width="stretch", key=f"batch_table_{job.key}",
                 column_config={"item": None, "dominant": "mostly", "rows": "rows"})
    _downloads(job)
    return resume


def _downloads(job: CorpusJob) -> None:
    """One Parquet file and one CSV of every row, made on demand (a big job's table is not kept in memory)."""
    c1, c2 = st.columns(2)
    tmp = Path(tempfile.gettempdir()) / "fer-studio-batch"
    tmp.mkdir(exist_ok=True)
    version = (job.manifest or {}).get("updated", "").replace(":", "")  # a resumed job's files are new
    parquet, csv = tmp / f"{job.key}-{version}.parquet", tmp / f"{job.key}-{version}.csv"
    if not parquet.is_file():
        write_parquet_file(job.folder, parquet)
    if not csv.is_file():
        job.folder.write_csv(csv)
    with open(parquet, "rb") as fh:
        c1.download_button("All rows (Parquet)", fh, f"{job.key}-faces.parquet", "application/octet-stream",
                           icon=":material/download:", key=f"batch_dl_parquet_{job.key}")
    with open(csv, "rb") as fh:
        c2.download_button("All rows (CSV)", fh, f"{job.key}-faces.csv", "text/csv", icon=":material/download:",
                           key=f"batch_dl_csv_{job.key}")
