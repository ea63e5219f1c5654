"""Real-browser fixtures: a `streamlit run` server on a free port and Debian's Chromium.

Everything here is skipped cleanly when /usr/bin/chromium is missing (an error under CI=true,
where .ci/run installs it). Two servers, each with its own model store:

- `server`: one tiny model trained on the demo set ("browser test model", via the CLI, so this
  pytest process never imports TensorFlow for it), for tests that need a run of their own;
- `shipped_server`: a copy of the repo's shipped models only, so the pages show the shipped
  default model as a new user sees it. The README's screenshots are taken on it (`shot_page`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# The README's screenshots are refreshed only on request (FER_UPDATE_SCREENSHOTS=1), so a
# test run never rewrites tracked files; otherwise they go to artifacts/ (git-ignored).
SCREENSHOTS = ROOT / ("docs/screenshots" if os.environ.get("FER_UPDATE_SCREENSHOTS") == "1" else "artifacts/screenshots")
SERVER_START_TIMEOUT = 90


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("/usr/bin/chromium is missing (CI installs it: apt-get install chromium)")
        pytest.skip("/usr/bin/chromium is not installed")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("the playwright package is missing (requirements.txt installs it)")
        pytest.skip("the playwright package is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def face_image_bgr() -> np.ndarray:
    """A real photo with one face: scikit-image's astronaut (Eileen Collins), BGR."""
    import cv2
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def face_crop_320x240() -> np.ndarray:
    """The astronaut's face inside a 320x240 frame (face ~90x110 px, left of centre)."""
    return np.ascontiguousarray(face_image_bgr()[0:240, 62:382])


def write_y4m(path: Path, frame_bgr: np.ndarray, frames: int = 30, fps: int = 30) -> Path:
    """A y4m video Chromium can use as its fake camera (it loops the file)."""
    import cv2

    h, w = frame_bgr.shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        yuv = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420).tobytes()
        for _ in range(frames):
            f.write(b"FRAME\n")
            f.write(yuv)
    return path


def copy_shipped_models(dest: Path) -> dict:
    """Copy the repo's shipped models (meta.json has "shipped") into `dest`; returns the default's meta."""
    default = None
    for meta_path in sorted((ROOT / "models").glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        if not meta.get("shipped"):
            continue
        shutil.copytree(meta_path.parent, dest / meta_path.parent.name,
                        ignore=shutil.ignore_patterns(".meta.lock"))
        if meta["shipped"].get("default"):
            default = meta
    assert default is not None, "no shipped default model under models/"
    return default


class StreamlitServer:
    def __init__(self, models_dir: Path, cache_dir: Path, log_path: Path, extra_env: dict | None = None) -> None:
        self.models_dir, self.cache_dir, self.log_path = models_dir, cache_dir, log_path
        self.extra_env = dict(extra_env or {})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.healthy_after_s: float | None = None

    def start(self) -> StreamlitServer:
        env = {**os.environ, "FER_MODELS_DIR": str(self.models_dir), "FER_CACHE_DIR": str(self.cache_dir),
               "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
        env.pop("FER_RTC_CONFIGURATION", None)
        env.pop("FER_PRELOAD", None)  # the app's default: the default model is preloaded at start
        env.update(self.extra_env)
        cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
               "--server.headless", "true", "--server.port", str(self.port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
        self._log = open(self.log_path, "wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def wait_healthy(self, timeout: float = SERVER_START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        self.healthy_after_s = time.monotonic() - self.started_at
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"streamlit did not become healthy in {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()


def train_tiny_model(models_dir: Path, cache_dir: Path, epochs: int = 2) -> str:
    """Train a small model on the demo set into `models_dir` with the CLI; returns its run id."""
    env = {**os.environ, "FER_MODELS_DIR": str(models_dir), "FER_CACHE_DIR": str(cache_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    run_id = "browser-tiny"
    out = subprocess.run(
        [sys.executable, "-m", "fer_core", "train", "--data", "demo", "--arch", "mini_xception",
         "--epochs", str(epochs), "--run-id", run_id, "--name", "browser test model", "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"tiny training failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return run_id


@pytest.fixture(scope="session")
def fake_camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The y4m Chromium's fake camera plays: the astronaut's face, looped."""
    _require_chromium()
    return write_y4m(tmp_path_factory.mktemp("camera") / "face.y4m", face_crop_320x240())


@pytest.fixture(scope="session")
def browser_env(tmp_path_factory: pytest.TempPathFactory, fake_camera):
    _require_chromium()
    base = tmp_path_factory.mktemp("browser")
    env = {"models": base / "models", "cache": base / "cache", "base": base}
    env["models"].mkdir()
    env["cache"].mkdir()
    env["run_id"] = train_tiny_model(env["models"], env["cache"])
    env["y4m"] = fake_camera
    return env


@pytest.fixture(scope="session")
def shipped_env(tmp_path_factory: pytest.TempPathFactory):
    """A model store holding only the repo's shipped models (a copy: tests may train or import into it)."""
    _require_chromium()
    base = tmp_path_factory.mktemp("shipped")
    env = {"models": base / "models", "cache": base / "cache", "base": base}
    env["models"].mkdir()
    env["cache"].mkdir()
    env["default_meta"] = copy_shipped_models(env["models"])
    env["default_name"] = env["default_meta"].get("name") or env["default_meta"]["run_id"]
    return env


@pytest.fixture(scope="session")
def shipped_server(shipped_env):
    srv = StreamlitServer(shipped_env["models"], shipped_env["cache"], shipped_env["base"] / "streamlit.log").start()
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def server(browser_env):
    srv = StreamlitServer(browser_env["models"], browser_env["cache"], browser_env["base"] / "streamlit.log").start()
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def browser(fake_camera):
    from playwright.sync_api import sync_playwright

    args = [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={fake_camera}",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    ]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            yield b
        finally:
            b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def page(request, browser, server, tmp_path_factory):
    """A page on the server with the test model."""
    yield from _page(request, browser, server, tmp_path_factory)


@pytest.fixture
def shot_page(request, browser, shipped_server, tmp_path_factory):
    """A page on the server with the shipped models (the README's screenshots)."""
    yield from _page(request, browser, shipped_server, tmp_path_factory)


def _page(request, browser, server, tmp_path_factory):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:  # keep what the browser showed, and the server's log
            out = tmp_path_factory.mktemp("failure")
            try:
                pg.screenshot(path=str(out / f"{request.node.name}.png"))
            except Exception:  # noqa: BLE001
                pass
            (out / "streamlit.log").write_text(server.log_tail(20_000))
            print(f"\nbrowser failure artefacts: {out}")
        ctx.close()


def save_screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def wait_app_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit says the script is no longer running."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        running = page.locator("[data-testid='stStatusWidget']").count()
        if not running:
            page.wait_for_timeout(300)
            if not page.locator("[data-testid='stStatusWidget']").count():
                return
        page.wait_for_timeout(250)


def wait_model_ready(page, timeout_ms: int = 300_000) -> None:
    """Wait until the sidebar says the default model is preloaded ("Model ready")."""
    page.locator("[data-testid='stSidebar']").get_by_text("Model ready").wait_for(timeout=timeout_ms)


# Records whether a text ever appears in the page (a spinner can come and go between two polls).
WATCH_TEXT_JS = """
(text) => {
  window.__seen = window.__seen || {};
  window.__seen[text] = false;
  const check = () => { if (document.body && document.body.innerText.includes(text)) window.__seen[text] = true; };
  new MutationObserver(check).observe(document.documentElement, {subtree: true, childList: true, characterData: true});
  check();
}
"""


def watch_text(page, text: str) -> None:
    page.evaluate(WATCH_TEXT_JS, text)


def text_was_seen(page, text: str) -> bool:
    return bool(page.evaluate("(t) => (window.__seen || {})[t]", text))
