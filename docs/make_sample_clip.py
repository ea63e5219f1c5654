"""Write assets/sample_clip.mp4, the clip the Video page offers for trying it out (maintainers).

    .venv/bin/python docs/make_sample_clip.py

6 s, 640x480, 30 frames/s, H.264 + AAC: the astronaut photo of scikit-image (NASA, public domain)
moving and growing, a second face (its mirror image) from 3 s, no face from 5.3 s, a 440 Hz tone.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.clips import ClipPlan, make_clip  # noqa: E402

SAMPLE_PLAN = ClipPlan(seconds=6.0, second_face_from=3.0, no_face_from=5.3, audio=True)

if __name__ == "__main__":
    path = make_clip(ROOT / "assets" / "sample_clip.mp4", SAMPLE_PLAN)
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB")
