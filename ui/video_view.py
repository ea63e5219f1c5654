"""The Video page's views: a running analysis (progress, frames/s, Cancel) and a finished one
(annotated video, emotion over time per face with the frame at a clicked time, the per-face
summary, downloads). The analysis itself is fer_core.inference.video(_jobs)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from fer_core.charts import emotion_timeline_figure
from fer_core.inference.video_jobs import VideoJob
from fer_core.labels import FER_LABELS

PROB_COLUMNS = [f"p_{n}" for n in FER_LABELS]


def show_running(job: VideoJob) -> None:
    """Progress of a running job, redrawn every half second; the page reruns when it ends."""

    @st.fragment(run_every=0.5)
    def progress() -> None:
        if job.state != "running":
            st.rerun()
        eta = (job.total - job.done) / job.fps if job.fps > 0 and job.total else None
        text = f"Analysing {job.name}: frame {job.done:,} of about {job.total:,}"
        if job.fps > 0:
            text += f" · {job.fps:.1f} frames/s" + (f" · about {eta:.0f} s left" if eta is not None else "")
        st.progress(job.fraction, text=text)
        if st.button("Cancel", key=f"cancel_{job.key}", icon=":material/cancel:"):
            job.cancel()

    progress()


def _table(job: VideoJob) -> Any:
    import pandas as pd

    return pd.read_csv(job.csv)


def show_result(job: VideoJob) -> None:
    summary = job.summary or {}
    info = summary.get("video") or {}
    tracks = summary.get("tracks") or []
    if job.state == "cancelled":
        st.warning(f"Cancelled after {summary.get('frames_read', 0):,} frames: below is what was done.",
                   icon=":material/cancel:")
    st.caption(f"**{job.name}** · {info.get('width')}x{info.get('height')}, {info.get('duration_s', 0):.1f} s at "
               f"{info.get('fps', 0):g} frames/s · {summary.get('frames_read', 0):,} frames read, "
               f"{summary.get('frames_processed', 0):,} analysed at {summary.get('frames_per_second', 0):.1f} frames/s · "
               f"{len(tracks)} face(s)")
    for note in summary.get("notes") or []:
        st.info(note, icon=":material/info:")
    video_col, side = st.columns([3, 2], gap="large")
    with video_col:
        if job.video.is_file():
            st.video(str(job.video))
    with side:
        _downloads(job)
    if not tracks:
        st.info("No face was found in this video.", icon=":material/face:")
        return
    _summary_table(tracks)
    table = _table(job)
    for track in tracks:
        _track_chart(job, table, track)


def _summary_table(tracks: list[dict[str, Any]]) -> None:
    import pandas as pd

    rows = [{"face": f"#{t['track_id']}", "from (s)": t["first_s"], "to (s)": t["last_s"], "on screen (s)": t["seconds"],
             "mostly": t["dominant"], **{n: t["share"].get(n, 0.0) for n in FER_LABELS}} for t in tracks]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={n: st.column_config.ProgressColumn(n, format="percent", min_value=0.0, max_value=1.0)
                                for n in FER_LABELS})


def _track_chart(job: VideoJob, table: Any, track: dict[str, Any]) -> None:
    tid = track["track_id"]
    rows = table[table["track_id"] == tid].sort_values("time_s")
    if rows.empty:
        return
    fig = emotion_timeline_figure(rows["time_s"].to_numpy(), rows[PROB_COLUMNS].to_numpy(), FER_LABELS,
                                  title=f"Face #{tid}: emotion over time")
    event = st.plotly_chart(fig, key=f"timeline_{job.key}_{tid}", on_select="rerun", selection_mode="points",
                            width="stretch")
    points = (getattr(event, "selection", None) or {}).get("points") or []
    times = [float(p["x"]) for p in points if p.get("y") != "dominant"]  # the band's bars carry lengths, not times
    if times:
        _frame_at(job, times[0])


def _frame_at(job: VideoJob, time_s: float) -> None:
    from fer_core.inference.images import to_rgb
    from fer_core.inference.video_io import frame_at

    frame = frame_at(job.video, time_s) if job.video.is_file() else None
    if frame is not None:
        st.image(to_rgb(frame), caption=f"{job.name} at {time_s:.2f} s", width=480)


def _downloads(job: VideoJob) -> None:
    stem = job.name.rsplit(".", 1)[0] or "video"
    if job.video.is_file():
        st.download_button("Annotated video (MP4)", job.video.read_bytes(), f"{stem}-annotated.mp4", "video/mp4",
                           icon=":material/download:", key=f"dl_video_{job.key}")
    if job.csv.is_file():
        st.download_button("Per-frame table (CSV)", job.csv.read_bytes(), f"{stem}-frames.csv", "text/csv",
                           icon=":material/download:", key=f"dl_csv_{job.key}")
    if job.summary_path.is_file():
        st.download_button("Per-face summary (JSON)", job.summary_path.read_bytes(), f"{stem}-summary.json",
                           "application/json", icon=":material/download:", key=f"dl_json_{job.key}")
