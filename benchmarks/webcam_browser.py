"""The webcam end to end: what reaches the browser, beside a pass-through streamlit-webrtc app.

    .venv/bin/python benchmarks/webcam_browser.py [--seconds 30] [--warmup 12] [--faces 1 4] [--repeat 1]

Debian's Chromium (Playwright) gets a fake camera playing a 640x480, 30 fps clip this script
makes (benchmarks.clips: the astronaut's face, 1 or 4 of them, moving slowly). Every camera frame
carries its number in a strip of black and white blocks in the bottom-right corner, so the page
can tell a new frame from a repeated one. For each clip, the project's Webcam page (shipped
models, default settings) and benchmarks/webrtc_passthrough_app.py (the callback only converts
the frame to an array and back) are streamed in turn, each in a fresh Chromium and server:

- delivered fps: distinct camera frames the returned <video> presented per second: the
  compositor's count of presented frames (requestVideoFrameCallback's presentedFrames), less the
  share of repeats among the frames the page read (a frame the server sends again because the
  next one was not ready counts once);
- presented fps: frames the <video> presented, repeats included;
- latency p50/p95: from the moment the browser shows a camera frame in its own local preview of
  the same camera stream to the moment it shows that frame coming back from the server (capture,
  encode, network, server, encode again, decode: all of it);
- processed fps: the Webcam page's own readout (frames analysed per second; its camera FPS and
  latency readouts are printed in the JSON lines);
- CPU: each process's share of one core over the measured window (server; Chromium, all its
  processes together).

Nothing is printed as a pass or fail; the ratios to the pass-through ceiling are the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.clips import ClipPlan, _frame, astronaut_face  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CODE_BITS = 8  # frame number modulo 256; the clip is shorter than that, so it wraps with the loop
BLOCK = 16  # px per bit block (VP8 keeps 16x16 flat blocks black or white)
CLIP_SECONDS = 6
FPS = 30

# ----------------------------------------------------------------------------- the camera clip


def stamp(img: np.ndarray, index: int) -> None:
    """Write `index` (mod 256) as CODE_BITS blocks at the bottom right, most significant first."""
    h, w = img.shape[:2]
    y0 = h - BLOCK
    img[y0 - 4:h, w - CODE_BITS * BLOCK - 4:w] = 128  # a grey frame around the strip
    for bit in range(CODE_BITS):
        on = (index >> (CODE_BITS - 1 - bit)) & 1
        x0 = w - (CODE_BITS - bit) * BLOCK
        img[y0:h, x0:x0 + BLOCK] = 255 if on else 0


def camera_clip(path: Path, faces: int) -> Path:
    """A y4m Chromium loops as its camera: 640x480, 30 fps, CLIP_SECONDS long, frames numbered."""
    plan = ClipPlan(seconds=CLIP_SECONDS, fps=FPS, size=(640, 480), faces=faces)
    face = astronaut_face()
    n = CLIP_SECONDS * FPS
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W640 H480 F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(n):
            # forth and back, so the loop does not make the faces jump
            t = (i if i < n // 2 else n - i) * 2 / FPS
            img = _frame(plan, face, min(t, plan.seconds))
            stamp(img, i)
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


# ----------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run SCRIPT` from `root` as the README starts it (its .streamlit/config.toml applies),
    on a free port, with its own model store (a copy of that checkout's shipped models)."""

    def __init__(self, script: Path, root: Path, workdir: Path) -> None:
        self.script, self.root, self.workdir = script, root, workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        models = self.workdir / f"models-{abs(hash(str(self.root)))}"
        if not models.exists():
            models.mkdir(parents=True)
            for meta in sorted((self.root / "models").glob("*/meta.json")):
                if json.loads(meta.read_text()).get("shipped"):
                    shutil.copytree(meta.parent, models / meta.parent.name, ignore=shutil.ignore_patterns(".meta.lock"))
        env = {**os.environ, "FER_MODELS_DIR": str(models), "FER_CACHE_DIR": str(self.workdir / "cache"),
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.pop("FER_RTC_CONFIGURATION", None)
        self.log = open(self.workdir / f"{self.script.stem}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(self.script), "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.script.name} did not start; see {self.log.name}")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ----------------------------------------------------------------------------- CPU shares


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def _chromium_pids() -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "comm").read_text().strip().startswith("chrom"):
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def cpu_sample(server_pid: int) -> dict[str, int]:
    return {"server": _ticks(server_pid), "chromium": sum(_ticks(p) for p in _chromium_pids()), "t": time.monotonic()}


def cpu_share(a: dict, b: dict) -> dict[str, float]:
    hz = os.sysconf("SC_CLK_TCK")
    wall = b["t"] - a["t"]
    return {k: 100.0 * (b[k] - a[k]) / hz / wall for k in ("server", "chromium")}


# ----------------------------------------------------------------------------- in the browser

# Runs in every frame before its scripts: keep the camera stream streamlit-webrtc asks for, so the
# benchmark can show the very same stream locally (same capturer, same frame numbers).
INIT_JS = """
(() => {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia || md.__ferWrapped) return;
  const orig = md.getUserMedia.bind(md);
  md.getUserMedia = async (c) => { const s = await orig(c); window.__ferStreams = (window.__ferStreams || []).concat([s]); return s; };
  md.__ferWrapped = true;
  const PC = window.RTCPeerConnection;
  if (PC) window.RTCPeerConnection = function (...a) { const pc = new PC(...a); window.__ferPCs = (window.__ferPCs || []).concat([pc]); return pc; };
  if (PC) window.RTCPeerConnection.prototype = PC.prototype;
})();
"""

MEASURE_JS = """
async ([bits, block, seconds]) => {
  const remote = document.querySelector('video');
  const stream = (window.__ferStreams || [])[0];
  if (!remote || !stream) return {error: 'no video or no camera stream'};
  const local = document.createElement('video');
  local.muted = true; local.playsInline = true; local.srcObject = stream;
  local.style = 'position:fixed;left:0;top:0;width:64px;height:48px;opacity:0.01';
  document.body.appendChild(local);
  await local.play();
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const read = (v) => {
    const w = v.videoWidth, h = v.videoHeight;
    if (!w || !h) return -1;
    const s = w / 640, bw = block * s, y = h - bw / 2;
    canvas.width = Math.ceil(bits * bw); canvas.height = Math.ceil(bw);
    ctx.drawImage(v, w - bits * bw, h - bw, bits * bw, bw, 0, 0, canvas.width, canvas.height);
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let code = 0;
    for (let b = 0; b < bits; b++) {
      const x = Math.floor((b + 0.5) * bw), yy = Math.floor(bw / 2);
      const i = (yy * canvas.width + x) * 4;
      code = code * 2 + ((px[i] + px[i + 1] + px[i + 2]) / 3 > 128 ? 1 : 0);
    }
    return code;
  };
  const seenLocal = new Map();  // code -> last time the local preview showed it
  const r = {callbacks: 0, distinct: 0, latencies: [], unmatched: 0};
  let last = -2, lastLocal = -2, stop = false;
  const onLocal = () => { if (stop) return; const now = performance.now(); const c = read(local); if (c >= 0 && c !== lastLocal) { seenLocal.set(c, now); lastLocal = c; } local.requestVideoFrameCallback(onLocal); };
  local.requestVideoFrameCallback(onLocal);
  const onRemote = (_, meta) => {
    if (stop) return;
    const now = performance.now();
    if (r.firstPresented === undefined) r.firstPresented = meta.presentedFrames;
    r.lastPresented = meta.presentedFrames;
    r.callbacks += 1;
    const c = read(remote);
    if (c !== last) {
      r.distinct += 1; last = c;
      const t = seenLocal.get(c);
      if (t !== undefined && now - t < 3000) r.latencies.push(now - t); else r.unmatched += 1;
    }
    remote.requestVideoFrameCallback(onRemote);
  };
  remote.requestVideoFrameCallback(onRemote);
  await new Promise((ok) => setTimeout(ok, seconds * 1000));
  stop = true;
  local.remove();
  r.rtc = {};
  for (const pc of (window.__ferPCs || [])) {
    (await pc.getStats()).forEach((st) => {
      if (st.type === 'outbound-rtp' && st.kind === 'video') Object.assign(r.rtc, {sent_fps: st.framesPerSecond, sent: st.framesSent, limited: st.qualityLimitationReason});
      if (st.type === 'inbound-rtp' && st.kind === 'video') Object.assign(r.rtc, {recv_fps: st.framesPerSecond, decoded: st.framesDecoded, dropped: st.framesDropped, jitter_buffer_ms: st.jitterBufferEmittedCount ? 1000 * st.jitterBufferDelay / st.jitterBufferEmittedCount : null});
    });
  }
  r.width = remote.videoWidth; r.height = remote.videoHeight;
  // The compositor presents frames even when this page's main thread is too busy to run a callback
  // for each: count presented frames from its counter, and repeats from the frames the callbacks read.
  r.presented = (r.lastPresented || 0) - (r.firstPresented || 0) + 1;
  r.repeatShare = r.callbacks ? 1 - r.distinct / r.callbacks : 0;
  return r;
}
"""


def page_metrics(page) -> dict[str, str]:
    """The Webcam page's st.metric readouts: label -> value text."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll("[data-testid='stMetric']")].map(m => [
        (m.querySelector("[data-testid='stMetricLabel']") || {}).innerText?.trim(),
        (m.querySelector("[data-testid='stMetricValue']") || {}).innerText?.trim()]))""")


def measure(app: str, clip: Path, seconds: float, warmup: float, workdir: Path, before: Path | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    root = before if app == "before" else ROOT
    script = root / ("benchmarks/webrtc_passthrough_app.py" if app == "passthrough" else "streamlit_app.py")
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
    with Server(script, root, workdir) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera"])
            ctx.add_init_script(INIT_JS)
            page = ctx.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{server.url}/{'' if app == 'passthrough' else 'webcam'}", wait_until="domcontentloaded")
            el = page.locator("iframe[title*='streamlit_webrtc']").first
            el.wait_for()
            frame = el.element_handle().content_frame()
            frame.get_by_role("button", name="START").click()
            frame.wait_for_function("() => { const v = document.querySelector('video'); return v && v.readyState >= 2 && v.currentTime > 0.5; }")
            page.wait_for_timeout(warmup * 1000)
            cpu0 = cpu_sample(server.proc.pid)
            r = frame.evaluate(MEASURE_JS, [CODE_BITS, BLOCK, seconds])
            share = cpu_share(cpu0, cpu_sample(server.proc.pid))
            metrics = page_metrics(page) if app != "passthrough" else {}
            frame.get_by_role("button", name="STOP").click()
        finally:
            browser.close()
    if "error" in r:
        raise RuntimeError(f"{app}: {r['error']}")
    lat = sorted(r["latencies"])
    pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan"))
    return {
        "delivered": r["presented"] * (1 - r["repeatShare"]) / seconds, "presented": r["presented"] / seconds,
        "callbacks": r["callbacks"] / seconds, "distinct_read": r["distinct"] / seconds,
        "processed": metrics.get("analysed FPS", metrics.get("FPS", "-")),  # "FPS" before the change
        "camera": metrics.get("camera FPS", "-"),
        "page_p50": metrics.get("latency p50", "-"), "page_p95": metrics.get("latency p95", "-"), "rtc": r.get("rtc"),
        "lat_p50": pct(0.5), "lat_p95": pct(0.95), "unmatched": r["unmatched"],
        "cpu_server": share["server"], "cpu_chromium": share["chromium"], "size": f"{r['width']}x{r['height']}",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds per case")
    ap.add_argument("--warmup", type=float, default=12.0, help="seconds streamed before measuring")
    ap.add_argument("--faces", type=int, nargs="+", default=[1, 4], choices=[1, 2, 3, 4])
    ap.add_argument("--repeat", type=int, default=1, help="rounds (pass-through and page alternate)")
    ap.add_argument("--apps", nargs="+", default=["passthrough", "fer-studio"], choices=["passthrough", "fer-studio", "before"])
    ap.add_argument("--before", type=Path, help="another checkout of fer-studio (e.g. a git worktree of an older "
                    "commit with its .venv-free files; this venv runs it): measured as app 'before'")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    work = Path(tempfile.mkdtemp(prefix="webcam-bench-"))
    print(f"fer-studio webcam in the browser: Chromium fake camera 640x480 {FPS} fps, {args.seconds:.0f} s measured "
          f"after {args.warmup:.0f} s, {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows: list[dict] = []
    for faces in args.faces:
        clip = camera_clip(work / f"camera-{faces}.y4m", faces)
        for rnd in range(args.repeat):
            for app in args.apps:
                res = measure(app, clip, args.seconds, args.warmup, work, args.before)
                rows.append({"faces": faces, "app": app, "round": rnd + 1, **res})
                print(json.dumps(rows[-1]), flush=True)
    print("\n| faces | app | delivered fps | x pass-through | analysed fps (page) | processing p50 / p95 ms (page) "
          "| end to end p50 / p95 ms | CPU server / Chromium % |")
    print("|---|---|---|---|---|---|---|---|")
    for faces in args.faces:
        ceiling = statistics.median([r["delivered"] for r in rows if r["faces"] == faces and r["app"] == "passthrough"] or [float("nan")])
        for app in args.apps:
            for r in (r for r in rows if r["faces"] == faces and r["app"] == app):
                page = f"{r['page_p50']} / {r['page_p95']}".replace(" ms", "") if app != "passthrough" else "-"
                print(f"| {faces} | {app} | {r['delivered']:.1f} | {r['delivered'] / ceiling:.2f} | {r['processed']} | {page} | "
                      f"{r['lat_p50']:.0f} / {r['lat_p95']:.0f} | {r['cpu_server']:.0f} / {r['cpu_chromium']:.0f} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
