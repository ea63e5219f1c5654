"""Write the app's own images (maintainers): its icon and the Predict page's example photos.

    .venv/bin/python docs/make_app_images.py

- assets/icon.png: the browser tab's icon (a smiling face in the theme's blue), drawn here, so the
  app shows it offline (a Material icon as page_icon is fetched from Google's font CDN).
- assets/examples/*.jpg: photos a newcomer can try on the Predict page, all from scikit-image's
  data set and free to use: the astronaut Eileen Collins (NASA, public domain), the cameraman
  (CC0, Lav Varshney), the two side by side, and Chelsea the cat (CC0, Stefan van der Walt: a photo
  with no human face, to show what the page says then).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw
from skimage import data

ROOT = Path(__file__).resolve().parents[1]
BLUE = (46, 134, 222)  # .streamlit/config.toml primaryColor #2E86DE


def icon(size: int = 64) -> Image.Image:
    big = size * 4
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((4, 4, big - 4, big - 4), fill=BLUE + (255,))
    eye = big // 11
    for cx in (big * 0.36, big * 0.64):
        d.ellipse((cx - eye, big * 0.38 - eye, cx + eye, big * 0.38 + eye), fill="white")
    d.arc((big * 0.27, big * 0.3, big * 0.73, big * 0.76), start=25, end=155, fill="white", width=big // 14)
    return img.resize((size, size), Image.LANCZOS)


def examples() -> dict[str, np.ndarray]:
    """name -> RGB photo."""
    astronaut, camera = data.astronaut(), np.stack([data.camera()] * 3, axis=-1)
    pair = np.full((512, 1024, 3), 255, np.uint8)
    pair[:, :512], pair[:, 512:] = astronaut, camera
    return {"astronaut.jpg": astronaut, "cameraman.jpg": camera, "two_people.jpg": pair, "cat_no_face.jpg": data.chelsea()}


if __name__ == "__main__":
    icon().save(ROOT / "assets" / "icon.png")
    out = ROOT / "assets" / "examples"
    out.mkdir(parents=True, exist_ok=True)
    for name, rgb in examples().items():
        cv2.imwrite(str(out / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    for p in sorted([ROOT / "assets" / "icon.png", *out.iterdir()]):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size / 1024:.0f} KB")
