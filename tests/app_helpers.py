"""Helpers for the app tests: a tiny trained run (trained once per session, via the CLI so the
test process does not pay TensorFlow's import for it), tiny dataset zips and a face photo."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY_RUN_ID = "tiny-demo-run"
_TRAINED: Path | None = None


def trained_store() -> Path:
    """A model store holding one finished mini_xception run (1 epoch on a slice of the demo set)."""
    global _TRAINED
    if _TRAINED is not None and (_TRAINED / TINY_RUN_ID / "model.keras").is_file():
        return _TRAINED
    base = Path(tempfile.mkdtemp(prefix="fer-tiny-store-"))
    env = {**os.environ, "FER_MODELS_DIR": str(base), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, "-m", "fer_core", "train", "--data", "demo", "--arch", "mini_xception", "--epochs", "1",
         "--max-train-images", "700", "--run-id", TINY_RUN_ID, "--name", "tiny test model", "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"tiny training failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    _TRAINED = base
    return base


def install_tiny_run(models_dir: str | Path) -> str:
    """Copy the session's tiny run into `models_dir` (the test's own store); returns its run id."""
    src = trained_store() / TINY_RUN_ID
    dst = Path(models_dir) / TINY_RUN_ID
    if not dst.exists():
        shutil.copytree(src, dst)
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
