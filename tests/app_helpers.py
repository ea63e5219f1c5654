"""Helpers for the app tests: a tiny trained run (trained once per session by the `tiny_store`
fixture, via the CLI so the test process does not pay TensorFlow's import for it), tiny dataset
zips and a face photo."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY_RUN_ID = "tiny-demo-run"


def train_tiny_store(base: Path) -> Path:
    """A model store at `base` holding one finished mini_xception run (1 epoch on a slice of the demo
    set), trained through the CLI; the session fixture `tiny_store` (tests/conftest.py) makes it once."""
    env = {**os.environ, "FER_MODELS_DIR": str(base), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, "-m", "fer_core", "train", "--data", "demo", "--arch", "mini_xception", "--epochs", "1",
         "--max-train-images", "700", "--run-id", TINY_RUN_ID, "--name", "tiny test model", "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"tiny training failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return base


def install_tiny_run(tiny_store: Path, models_dir: str | Path) -> str:
    """Copy the session's tiny run (fixture `tiny_store`) into `models_dir`, the test's own store; its run id."""
    dst = Path(models_dir) / TINY_RUN_ID
    if not dst.exists():
        shutil.copytree(tiny_store / TINY_RUN_ID, dst)
    return TINY_RUN_ID


def png_bytes(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def jpeg_bytes(img_bgr: np.ndarray, quality: int = 90) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", img_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def tiny_zip(per_class: int = 3, seed: int = 0, with_junk: bool = True) -> bytes:
    """A Kaggle-layout zip: train/<class>/*.png and test/<class>/*.png, 48x48 noise faces,
    plus (optionally) one corrupt file and one non-image file to be skipped."""
    from fer_core.labels import ALPHABETICAL_LABELS

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for split in ("train", "test"):
            for name in ALPHABETICAL_LABELS:
                for i in range(per_class):
                    img = rng.integers(0, 256, (48, 48), dtype=np.uint8)
                    z.writestr(f"{split}/{name}/{i}.png", png_bytes(img))
        if with_junk:
            z.writestr("train/happy/broken.png", b"not a png at all")
            z.writestr("train/notes.txt", b"hello")
    return buf.getvalue()


def astronaut_bgr() -> np.ndarray:
    import cv2
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def coffee_bgr() -> np.ndarray:
    """A photo with no face in it (scikit-image's coffee cup)."""
    import cv2
    from skimage import data

    return cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)


def webp_bytes(img_bgr: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".webp", img_bgr)
    assert ok
    return buf.tobytes()


# --------------------------------------------------------------------------- AppTest

APP = str(ROOT / "streamlit_app.py")
APP_TIMEOUT = 180


def new_app():
    """The app under streamlit.testing.v1.AppTest, run once (the home page)."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=APP_TIMEOUT).run()


def open_page(at, page: str):
    return at.switch_page(page).run()


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(at) -> str:
    """Every text element of the page, one per line (markdown, captions, alerts, titles)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [w.value for w in at.warning] + [i.value for i in at.info] + [s.value for s in at.success]
    parts += [t.value for t in at.title] + [s.value for s in at.subheader]
    return "\n".join(str(p) for p in parts)
