"""Face crops for the classifier: square, framed as FER-2013's faces are, upright from the eye landmarks.

Every path crops here (still photos, the webcam pipeline, video), so the model sees the same
kind of crop everywhere.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from fer_core.inference.boxes import Box

# Extra crop around a face box, as a fraction of its side. FER-2013's faces are cropped as tight as the
# detector's box: benchmarks/box_offset.py finds YuNet's box 1.016 FER crop sides wide (median, centre
# offset under 1%), so no margin gives the framing every model learned. A 10% margin (until 2026-12)
# showed the models a face 22% smaller than in training: 62.6% on PublicTest faces found in a frame
# against 67.4% with none (69.5% on FER-2013's own crops).
DEFAULT_MARGIN = 0.0
MAX_CROP_SIDE = 192  # crops are warped at most this big (the model input is 48-64 px)
_WARP_LIMIT = 32767  # cv2.warpAffine refuses images with a side of SHRT_MAX pixels or more


def crop_face(
    frame: np.ndarray,
    box: Box,
    margin: float = DEFAULT_MARGIN,
    align: bool = False,
    max_side: int = MAX_CROP_SIDE,
) -> np.ndarray:
    """Square crop around `box`, `margin` (fraction of the box side) added on every side.

    With `align` and eye landmarks, the crop is rotated so the eyes are level. Parts outside the
    frame are filled by replicating the border. The crop is at most `max_side` pixels a side.
    """
    cx, cy = box.center
    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    side = max(side, 2.0)
    out = int(min(max_side, max(8, round(side))))
    angle = box.eye_angle() if align else None
    if max(frame.shape[:2]) >= _WARP_LIMIT:  # e.g. a 1 x 40,000 px upload: warp only the region around the box
        frame, cx, cy, side = _crop_region(frame, cx, cy, side)
    m = cv2.getRotationMatrix2D((cx, cy), angle or 0.0, out / side)
    m[0, 2] += out / 2.0 - cx
    m[1, 2] += out / 2.0 - cy
    interp = cv2.INTER_AREA if out < side and not angle else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, m, (out, out), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def _crop_region(frame: np.ndarray, cx: float, cy: float, side: float) -> tuple[np.ndarray, float, float, float]:
    """The part of a very large frame a crop of `side` around (cx, cy) can sample, at any rotation,
    shrunk if still too large for cv2.warpAffine; with the centre and side in its coordinates."""
    h, w = frame.shape[:2]
    reach = int(math.ceil(side * 0.75)) + 2  # > half the diagonal of the rotated square
    x0 = min(max(0, int(cx) - reach), w - 1)
    y0 = min(max(0, int(cy) - reach), h - 1)
    x1 = max(x0 + 1, min(w, int(cx) + reach + 1))
    y1 = max(y0 + 1, min(h, int(cy) + reach + 1))
    region, cx, cy = frame[y0:y1, x0:x1], cx - x0, cy - y0
    big = max(region.shape[:2])
    if big >= _WARP_LIMIT:
        f = (_WARP_LIMIT - 1) / big
        size = (max(1, int(region.shape[1] * f)), max(1, int(region.shape[0] * f)))
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        cx, cy, side = cx * f, cy * f, side * f
    return region, cx, cy, side
