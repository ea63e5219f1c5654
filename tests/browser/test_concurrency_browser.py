"""Concurrency and limits in a real Chromium (issue 6).

- Two sessions at once: one trains while another predicts a real photo; a third session that
  had the Train page open presses Train and is told a training is "already running".
- The webcam worker stops when its session leaves: navigating away from the Webcam page, or
  closing the browser, releases the stream's UDP sockets and threads in the server process.
- Streamlit's upload limit (server.maxUploadSize): a file over it is refused in the browser
  with Streamlit's message and never reaches the page.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from fer_core.training import jobs
from fer_core.store.runs import ModelStore
from tests.browser.conftest import StreamlitServer, face_image_bgr, wait_model_ready
from tests.browser.browser_helpers import goto, start_training, start_webcam

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _new_page(browser, **kwargs):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, **kwargs)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    return ctx, page


def _stop_all(store: ModelStore) -> None:
    for run in store.list_runs():
        if run.status == "running":
            jobs.stop_training(store, run.run_id)
            jobs.wait(store, run.run_id, timeout_s=180)


def test_one_session_trains_while_another_predicts_and_a_third_is_told_it_is_running(browser, server, browser_env,
                                                                                     tmp_path):
    import cv2

    store = ModelStore(browser_env["models"])
    before = {r.run_id for r in store.list_runs()}
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), face_image_bgr(), [cv2.IMWRITE_JPEG_QUALITY, 92])
    (ctx_a, a), (ctx_b, b), (ctx_c, c) = (_new_page(browser) for _ in range(3))
    try:
        goto(c, server, "train")  # C opens the Train page while nothing is training
        c.get_by_role("button", name="Train", exact=True).wait_for(timeout=120_000)
        # The default model's preload reruns the page once it is ready: let that happen now, so that C's
        # page is stale (not redrawn) when A starts training.
        wait_model_ready(c)
        assert c.get_by_role("button", name="Train", exact=True).is_enabled()

        start_training(a, server, 40, settle_ms=500)
        a.get_by_text("Training now").wait_for(timeout=120_000)
        running = jobs.running_job(store)
        assert running is not None

        # B predicts while A's job trains
        goto(b, server, "predict")
        b.get_by_text("Drop images or a zip of images here").wait_for()
        b.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(photo))
        b.get_by_text("1 face", exact=False).first.wait_for(timeout=120_000)
        assert "1 face" in b.locator("[data-testid='stImageCaption']").first.inner_text()
        assert jobs.running_job(store) is not None and jobs.running_job(store).run_id == running.run_id

        # A's page kept updating live meanwhile
        a.get_by_text(re.compile(r"Epoch [1-9]\d* of 40")).first.wait_for(timeout=180_000)

        # C's stale page still shows an enabled Train button: pressing it gets a clear message
        c.get_by_role("button", name="Train", exact=True).click()
        c.get_by_text(re.compile("already running")).first.wait_for(timeout=60_000)
        runs = store.list_runs()
        assert [r.run_id for r in runs if r.status == "running"] == [running.run_id]
        assert {r.run_id for r in runs} == before | {running.run_id}  # no second run was created
    finally:
        _stop_all(store)
        for ctx in (ctx_a, ctx_b, ctx_c):
            ctx.close()
    assert jobs.running_job(store) is None


# --------------------------------------------------------------------------- webcam worker


def _udp_sockets(pid: int) -> int:
    """UDP sockets (WebRTC's ICE transports) open in process `pid`."""
    inodes = set()
    for table in ("udp", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        inodes.update(line.split()[9] for line in lines if len(line.split()) > 9)
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            n += 1
    return n


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _wait_released(pid: int, baseline_threads: int, timeout: float) -> tuple[int, int, float]:
    t0 = time.monotonic()
    while True:
        udp, threads = _udp_sockets(pid), _threads(pid)
        if udp == 0 and threads <= baseline_threads + 3:
            return udp, threads, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return udp, threads, time.monotonic() - t0
        time.sleep(0.5)


def test_webcam_worker_stops_when_its_session_leaves(browser, server):
    pid = server.proc.pid
    ctx, page = _new_page(browser, permissions=["camera"])
    try:
        goto(page, server, "webcam")
        page.locator("iframe[title*='streamlit_webrtc']").first.wait_for(timeout=120_000)
        wait_model_ready(page)  # the preload's threads (TensorFlow's pools among them) are up: a settled baseline
        page.wait_for_timeout(1500)
        baseline = _threads(pid)
        assert _udp_sockets(pid) == 0

        # 1. the session navigates to another page: the worker stops
        start_webcam(page, server, 1.0)
        assert _udp_sockets(pid) >= 1 and _threads(pid) >= baseline + 4, (_udp_sockets(pid), _threads(pid), baseline)
        page.get_by_role("link", name="Home").first.click()
        page.get_by_role("heading", name="fer-studio").wait_for(timeout=60_000)
        udp, threads, waited = _wait_released(pid, baseline, 30)
        assert udp == 0 and threads <= baseline + 3, f"worker still running {waited:.0f} s after leaving the page: {udp} UDP sockets, {threads} threads (baseline {baseline})"

        # 2. the browser goes away mid-stream: the worker stops (ICE consent times out after ~30 s)
        start_webcam(page, server, 1.0)
        assert _udp_sockets(pid) >= 1
    finally:
        ctx.close()
    udp, threads, waited = _wait_released(pid, baseline, 90)
    print(f"\nwebcam worker released {waited:.0f} s after the browser closed ({threads} threads, baseline {baseline})")
    assert udp == 0 and threads <= baseline + 3, f"worker still running {waited:.0f} s after the session left: {udp} UDP sockets, {threads} threads (baseline {baseline})"


# --------------------------------------------------------------------------- upload limit


def test_upload_over_the_limit_is_refused_before_the_app_sees_it(browser, browser_env, tmp_path, monkeypatch):
    """A server started with server.maxUploadSize = 1 (MB): a 2 MB photo is refused in the browser."""
    import cv2
    import numpy as np

    monkeypatch.setenv("STREAMLIT_SERVER_MAX_UPLOAD_SIZE", "1")
    srv = StreamlitServer(browser_env["models"], browser_env["cache"], tmp_path / "limit.log").start()
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), dtype=np.uint8))
    assert big.stat().st_size > 2 << 20
    ctx, page = _new_page(browser)
    try:
        srv.wait_healthy()
        goto(page, srv, "predict")
        page.get_by_text("Drop images or a zip of images here").wait_for(timeout=120_000)
        page.get_by_text("1MB per file", exact=False).first.wait_for()
        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(big))
        page.get_by_text(re.compile(r"File must be 1(\.0)?\s?MB or smaller")).first.wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        assert page.locator("[data-testid='stImage']").count() == 0  # nothing was predicted
        assert page.get_by_text("Drop one or more photos, or a zip of photos, above to start").count() == 1
    finally:
        ctx.close()
        srv.stop()
