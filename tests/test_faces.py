"""Face detectors on real photos, image decoding and colour order (no TensorFlow needed)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_core.inference import faces
from benchmarks.detector_cases import build_cases, face_sources, negative_images, place_face
from benchmarks.detector_eval import evaluate_detector, match
from fer_core.errors import FerError, ImageError
from fer_core.inference.boxes import Box
from fer_core.inference.faces import HaarDetector, YuNetDetector, available_detectors, make_detector
from fer_core.inference.images import ensure_bgr, from_rgb, load_image_bytes, to_rgb

from skimage import data as skimage_data  # noqa: E402

ASTRONAUT_FACE = Box(180, 64, 86, 110)  # consensus of YuNet / MTCNN / Haar (see detector_eval)
CAMERA_FACE = Box(196, 114, 59, 80)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return from_rgb(skimage_data.astronaut())


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return YuNetDetector()


@pytest.fixture(scope="module")
def haar() -> HaarDetector:
    return HaarDetector()


# ----------------------------------------------------------------------------- Box


def test_box_geometry() -> None:
    a, b = Box(0, 0, 10, 10), Box(5, 0, 10, 10)
    assert a.iou(a) == 1.0
    assert a.iou(b) == pytest.approx(50 / 150)
    assert a.iou(Box(20, 20, 5, 5)) == 0.0
    assert Box(10, 20, 30, 40).scaled(0.5).as_tuple() == (5, 10, 15, 20)
    assert Box(-5, -5, 20, 20).clipped(10, 10).as_tuple() == (0, 0, 10, 10)
    assert Box(50, 50, 10, 10).clipped(10, 10) is None
    tilted = Box(0, 0, 10, 10, landmarks=((0.0, 0.0), (10.0, 10.0), (5, 5), (0, 8), (8, 8)))
    assert tilted.eye_angle() == pytest.approx(45.0)
    assert Box(1, 2, 3, 4, 0.5).to_dict() == {"x": 1, "y": 2, "w": 3, "h": 4, "score": 0.5}


# ----------------------------------------------------------------------------- detectors on photos


@pytest.mark.parametrize("name", ["yunet", "haar"])
def test_detector_finds_astronaut_face(name: str, astronaut: np.ndarray) -> None:
    det = make_detector(name)
    boxes = det.detect(astronaut)
    assert len(boxes) == 1, boxes
    assert boxes[0].iou(ASTRONAUT_FACE) > 0.6
    assert 0 < boxes[0].score <= 1


def test_yunet_finds_turned_face_haar_frontal_misses(yunet: YuNetDetector) -> None:
    camera = from_rgb(skimage_data.camera())  # grayscale photo, face turned ~45 degrees
    boxes = yunet.detect(camera)
    assert len(boxes) == 1 and boxes[0].iou(CAMERA_FACE) > 0.6
    assert boxes[0].landmarks is not None and len(boxes[0].landmarks) == 5
    assert HaarDetector(profile=False).detect(camera) == []


@pytest.mark.parametrize("kind", ["black", "gray", "white", "noise", "chelsea", "coffee"])
def test_no_face_in_blank_frames_and_animal_photos(kind: str, yunet: YuNetDetector, haar: HaarDetector) -> None:
    frame = dict(negative_images())[kind]
    assert yunet.detect(frame) == []
    if kind in ("black", "gray", "white", "chelsea"):  # Haar fires on the coffee photo's saucer
        assert haar.detect(frame) == []


def test_large_frame_is_downscaled_and_boxes_come_back_in_frame_pixels(astronaut: np.ndarray) -> None:
    big = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    det = YuNetDetector(max_width=512)
    boxes = det.detect(big)
    assert len(boxes) == 1
    assert boxes[0].iou(ASTRONAUT_FACE.scaled(3.0)) > 0.6
    # landmarks scaled too: both eyes inside the box
    for x, y in boxes[0].landmarks[:2]:
        assert boxes[0].x < x < boxes[0].x + boxes[0].w and boxes[0].y < y < boxes[0].y + boxes[0].h


def test_detectors_accept_gray_and_bgra_and_refuse_corrupt(yunet: YuNetDetector, astronaut: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    assert len(yunet.detect(gray)) == 1
    assert len(yunet.detect(cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA))) == 1
    for bad in (None, np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10, 2), np.uint8), astronaut.astype(np.float32)):
        with pytest.raises(ImageError):
            yunet.detect(bad)


def test_transformed_face_keeps_its_known_box(yunet: YuNetDetector) -> None:
    src = face_sources(n_lfw=0)[0]
    bg = np.full((480, 640, 3), 128, np.uint8)
    frame, box = place_face(src, bg, face_width=120, angle=0, center=(400, 200))
    assert box.as_tuple() == (340, 124, 120, 153)
    assert match(yunet.detect(frame), [box]) == (1, 0)


def test_detector_measurement_yunet_beats_haar_on_hard_faces() -> None:
    cases = build_cases(quick=True)
    assert {c.group for c in cases} == {"scale", "rotation", "occlusion", "dim", "multi", "negative"}
    y = evaluate_detector(YuNetDetector(max_width=480), cases)  # the webcam's detection width
    assert y.faces >= 40 and y.recall >= 0.6
    assert y.negative_frames_with_fp == 0
    hard = [c for c in cases if c.group in ("rotation", "occlusion")]
    h = evaluate_detector(HaarDetector(profile=False, max_width=480), hard)
    yh = evaluate_detector(YuNetDetector(max_width=480), hard)
    assert yh.recall > h.recall + 0.2


def test_make_detector_auto_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    assert available_detectors()[:2] == ["yunet", "haar"]
    assert make_detector().name == "yunet"
    assert make_detector("HAAR").name == "haar"
    with pytest.raises(FerError, match="unknown face detector"):
        make_detector("nope")
    real_find_spec = faces.importlib.util.find_spec
    monkeypatch.setattr(faces.importlib.util, "find_spec", lambda n, *a: None if n in ("yuface", "mtcnn") else real_find_spec(n, *a))
    assert "yunet" not in available_detectors()
    assert make_detector("auto", max_width=320).name == "haar"
    with pytest.raises(faces.DetectorUnavailableError, match="yuface"):
        make_detector("yunet")
    with pytest.raises(faces.DetectorUnavailableError, match="mtcnn"):
        make_detector("mtcnn")


def test_faces_module_does_not_import_tensorflow() -> None:
    code = "import sys, fer_core.inference.faces as f; f.make_detector(); f.available_detectors(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# ----------------------------------------------------------------------------- images and colour order


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG") if mode else Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_rgb_upload_becomes_bgr_once() -> None:
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)  # red in RGB
    rgb[:, 10:20] = (0, 0, 255)  # blue
    bgr = load_image_bytes(_png(rgb))
    assert bgr.shape == (20, 30, 3) and bgr.dtype == np.uint8
    assert tuple(bgr[5, 5]) == (0, 0, 255)  # red lives in channel 2 of BGR
    assert tuple(bgr[5, 15]) == (255, 0, 0)
    assert np.array_equal(from_rgb(rgb), bgr)
    assert np.array_equal(to_rgb(bgr), rgb)


def test_grayscale_rgba_palette_and_16bit_images() -> None:
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = load_image_bytes(_png(gray))
    assert out.shape == (16, 16, 3) and np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 2], gray)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[0, 0, 3] = 255  # one opaque red pixel, the rest transparent
    out = load_image_bytes(_png(rgba, "RGBA"))
    assert tuple(out[0, 0]) == (0, 0, 255) and tuple(out[3, 3]) == (255, 255, 255)
    pal = Image.fromarray(np.full((4, 4, 3), (0, 255, 0), np.uint8)).convert("P")
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    assert tuple(load_image_bytes(buf.getvalue())[1, 1]) == (0, 255, 0)
    deep = Image.fromarray(np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000)
    buf = io.BytesIO()
    deep.save(buf, format="PNG")
    out = load_image_bytes(buf.getvalue())
    assert out.shape == (4, 4, 3) and out[3, 3, 0] > out[0, 0, 0]


def test_exif_orientation_is_applied() -> None:
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = (255, 0, 0)  # left half red (RGB)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    out = load_image_bytes(buf.getvalue())
    assert out.shape[:2] == (20, 10)  # portrait after rotation
    assert out[2, 5, 2] > 200 and out[17, 5, 2] < 60  # red half now on top, in the R channel of BGR


def test_corrupt_truncated_and_empty_files_are_refused() -> None:
    with pytest.raises(ImageError, match="empty"):
        load_image_bytes(b"")
    with pytest.raises(ImageError, match="not an image"):
        load_image_bytes(b"this is not an image at all" * 10)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG")
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image_bytes(buf.getvalue()[: len(buf.getvalue()) // 2], name="cut.jpg")


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (its data is a few bytes): a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    for side in (30000, 9000):  # beyond PIL's own bomb limit, and beyond ours only
        with pytest.raises(ImageError, match="MP allowed"):
            load_image_bytes(_png_header_claiming(side, side), name="bomb.png")
    with pytest.raises(ImageError, match="resize"):
        load_image_bytes(_png(np.zeros((100, 100, 3), np.uint8)), max_pixels=5000)


def test_ensure_bgr_contract() -> None:
    bgr = np.zeros((4, 5, 3), np.uint8)
    assert ensure_bgr(bgr) is bgr  # valid frames are not copied
    assert ensure_bgr(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert ensure_bgr(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    view = np.zeros((4, 10, 3), np.uint8)[:, ::2]
    assert ensure_bgr(view).flags.c_contiguous
    for bad in (None, [1, 2], np.zeros((4, 5, 3), np.float64), np.zeros((0, 5, 3), np.uint8), np.zeros((4, 5, 2), np.uint8), np.zeros(7, np.uint8)):
        with pytest.raises(ImageError):
            ensure_bgr(bad)


def test_yunet_through_its_library_gives_yuface_s_own_answer(astronaut) -> None:
    """YuNetDetector calls libfacedetection with one reused result buffer (yuface's binding leaks a new
    36 KB one per call): the same rows as yuface.c_detect, on a face and on an empty frame."""
    from yuface import c_detect

    ours = YuNetDetector()._c_detect
    assert ours is faces._facedetect_cnn()  # one binding per process
    for img in (astronaut, np.full((240, 320, 3), 128, np.uint8)):
        expected = np.asarray(c_detect(img))[:, :15]  # the 16th column is unused (yuface: -1, the library: 0)
        got = ours(img)
        assert got.shape == (len(expected), 16) and np.array_equal(got[:, :15], expected)
    assert len(ours(astronaut)) == 1


def test_the_app_crops_faces_as_fer2013_frames_them(fer2013_zip) -> None:
    """DEFAULT_MARGIN rests on a measurement (benchmarks/box_offset.py): the detector's box around a
    FER-2013 face set in a larger frame is about as wide as FER-2013's own crop, so the app's crop
    (the box squared, DEFAULT_MARGIN added) shows the models faces framed as they learned them."""
    import zipfile

    from benchmarks.box_offset import detect, geometry
    from fer_core.inference.crops import DEFAULT_MARGIN

    with zipfile.ZipFile(fer2013_zip) as zf:
        names = sorted(n for n in zf.namelist() if n.startswith("train/") and n.lower().endswith((".jpg", ".png")))
        pick = names[:: max(1, len(names) // 120)][:120]
        faces_48 = np.stack([cv2.imdecode(np.frombuffer(zf.read(n), np.uint8), cv2.IMREAD_GRAYSCALE) for n in pick])
    found = detect(make_detector("yunet"), faces_48)
    g = geometry(found)
    assert len(g) >= 0.9 * len(pick)
    dx, dy, side = np.median(g, axis=0)
    assert abs(dx) < 0.05 and abs(dy) < 0.05, (dx, dy)
    assert 0.9 < side * (1 + 2 * DEFAULT_MARGIN) < 1.12, side  # the old 10% margin: 1.22
