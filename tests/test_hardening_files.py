"""Hostile files (issue 6): what a stranger can upload to the public app, end to end.

Library level: zip bombs under the *default* limits, damaged data inside zips, decompression
bombs caught by Pillow's own pixel limit, image headers OpenCV refuses by raising, models whose
Lambda layer would run code on loading. App level (AppTest): the Dataset explorer and Predict
pages given zip slips, bombs, wrong CSVs, truncated / renamed / non-image files and hostile
file names: each gets a clear st.error naming the file, never a traceback, and the upload is
written nowhere but the cache's uploads/ folder.

The unit tests of each loader are in test_data_safezip / test_data_csv / test_data_images /
test_faces / test_store; generated inputs are in tests/fuzz/.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.data import load_dataset
from fer_core.data import images as data_images
from tests import samples as S
from fer_core.data.images import BadImage, decode_image
from fer_core.errors import DatasetError, ImageError, ModelFileError, UnsafeArchiveError
from fer_core.inference.images import load_image_bytes


@pytest.fixture(scope="module")
def layout() -> dict[str, bytes]:
    return S.layout_files(S.sample_images(per_class=1, seed=11))


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return path


def _png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- zips


def test_zip_bomb_is_refused_under_the_default_limits(tmp_path: Path, layout) -> None:
    """20 MiB of zeros in a 20 KiB member (ratio ~1000) next to real faces: refused before reading."""
    path = _zip(tmp_path / "bomb.zip", {**layout, "train/happy/bomb.png": bytes(20 << 20)})
    assert path.stat().st_size < 200_000
    with pytest.raises(UnsafeArchiveError, match=r"zip bomb\?.*train/happy/bomb.png.*limit 100x"):
        load_dataset(path)


def test_zip_whose_directory_declares_gigabytes_is_refused(tmp_path: Path, layout) -> None:
    """A central directory that claims 8 x 400 MiB (3.1 GiB): over the 2 GiB total, refused from the headers."""
    path = _zip(tmp_path / "liar.zip", {f"train/happy/{i}.png": b"x" * 2000 for i in range(8)} | layout,
                zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    pos = raw.find(b"PK\x01\x02")
    while pos >= 0:
        raw[pos + 24: pos + 28] = (400 << 20).to_bytes(4, "little")  # uncompressed size
        raw[pos + 20: pos + 24] = (300 << 20).to_bytes(4, "little")  # compressed size (ratio < 100)
        pos = raw.find(b"PK\x01\x02", pos + 4)
    path.write_bytes(bytes(raw))
    with pytest.raises(UnsafeArchiveError, match="in total"):
        load_dataset(path)


def test_member_with_an_empty_name_is_refused(tmp_path: Path, layout) -> None:
    """Found by the fuzzer: a member named "" (zipfile truncates at NUL) crashed ZipInfo.is_dir()."""
    path = _zip(tmp_path / "empty-name.zip", {**layout, "\x00evil.png": b"x"})
    with zipfile.ZipFile(path) as zf:
        assert "" in zf.namelist()
    with pytest.raises(UnsafeArchiveError, match="empty name"):
        load_dataset(path)


def test_damaged_csv_inside_a_zip_is_a_dataset_error(tmp_path: Path) -> None:
    """Found by the fuzzer: corrupt deflate data in a zipped fer2013.csv raised zlib.error."""
    text = S.csv_text(S.sample_images(per_class=1, seed=2)).encode() * 10
    path = _zip(tmp_path / "csv.zip", {"fer2013.csv": text})
    raw = bytearray(path.read_bytes())
    start = 30 + len("fer2013.csv")
    for k in range(start + 2000, start + 2100):
        raw[k] ^= 0x55
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="damaged"):
        load_dataset(path, use_cache=False)


def test_zip_slip_in_a_zipped_csv_is_refused(tmp_path: Path) -> None:
    text = S.csv_text(S.sample_images(per_class=1, seed=2)).encode()
    path = _zip(tmp_path / "slip.zip", {"fer2013.csv": text, "../../escaped.csv": text})
    with pytest.raises(UnsafeArchiveError, match=r"outside the archive"):
        load_dataset(path)


# --------------------------------------------------------------------------- images


def test_pillow_pixel_limit_stops_a_bomb_even_with_our_limit_lifted() -> None:
    """The second layer: with max_pixels raised past 900 MP, Pillow's DecompressionBombError still refuses it."""
    with pytest.raises(ImageError, match=r"bomb\.png: refused: .*decompression bomb"):
        load_image_bytes(_png_header_claiming(30000, 30000), name="bomb.png", max_pixels=10**12)


def test_real_compressed_bomb_is_refused_from_its_header() -> None:
    """A genuine 8000x8000 PNG (68 kB file, 64 MP): refused in well under a second, pixels never decoded."""
    ok, buf = cv2.imencode(".png", np.zeros((8000, 8000), np.uint8))
    data = buf.tobytes()
    assert ok and len(data) < 200_000
    with pytest.raises(ImageError, match=r"big\.png: 8000x8000 pixels \(64 MP\) is more than the 50 MP allowed"):
        load_image_bytes(data, name="big.png")
    with pytest.raises(BadImage) as info:
        decode_image(data)
    assert info.value.reason == data_images.TOO_LARGE


def test_gif_bomb_is_refused() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="GIF")
    gif = buf.getvalue()
    bomb = gif[:6] + struct.pack("<HH", 65535, 65535) + gif[10:]  # logical screen 65535 x 65535
    with pytest.raises(ImageError, match="bomb"):
        load_image_bytes(bomb, name="bomb.gif")
    with pytest.raises(BadImage) as info:
        decode_image(bomb)
    assert info.value.reason == data_images.TOO_LARGE


def test_header_opencv_refuses_by_raising_is_a_bad_image() -> None:
    """Found by the fuzzer: a 1 x 1,048,577 BMP made cv2.imdecode raise cv2.error (not return None)."""
    ok, buf = cv2.imencode(".bmp", np.zeros((1, 1), np.uint8))
    raw = bytearray(buf.tobytes())
    raw[22:26] = struct.pack("<i", 1_048_577)  # height over OpenCV's CV_IO_MAX_IMAGE_HEIGHT
    with pytest.raises(BadImage) as info:
        decode_image(bytes(raw))
    assert info.value.reason in (data_images.CORRUPT, data_images.TRUNCATED)
    with pytest.raises(ImageError):
        load_image_bytes(bytes(raw))


def test_image_with_a_side_over_32767_pixels_is_predicted_not_crashed() -> None:
    """Found by the fuzzer: a 1 x 40,000 px upload (under the pixel limit) made crop_face raise cv2.error."""
    from fer_core.inference.batch_predict import predict_images
    from fer_core.inference.faces import make_detector

    class Flat:
        def predict_proba(self, crops):
            return np.full((len(crops), 7), 1 / 7, np.float32)

    tall = load_image_bytes(cv2.imencode(".png", np.full((40000, 1), 128, np.uint8))[1].tobytes(), name="tall.png")
    assert tall.shape == (40000, 1, 3)
    [res] = predict_images([("tall.png", tall)], make_detector("haar", max_width=960), Flat(), True)
    assert res.error is None and len(res.faces) == 1 and res.faces[0].whole_image


@pytest.mark.parametrize("kind", ["truncated-jpeg", "truncated-png", "flipped-jpeg", "html", "zip", "pdf", "svg"])
def test_truncated_corrupt_and_renamed_files(kind: str) -> None:
    """Both decoders refuse them with their error type (the dataset decoder says why in a short reason)."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (5, 5), 2)
    jpeg = cv2.imencode(".jpg", img)[1].tobytes()
    png = cv2.imencode(".png", img)[1].tobytes()
    data = {
        "truncated-jpeg": jpeg[: len(jpeg) // 2],
        "truncated-png": png[: len(png) // 2],
        "flipped-jpeg": jpeg[:200] + bytes(b ^ 0xFF for b in jpeg[200:260]) + jpeg[260:],
        "html": b"<!doctype html><script>alert(1)</script>",
        "zip": _zip_bytes(),
        "pdf": b"%PDF-1.4\n1 0 obj<<>>endobj\n",
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    }[kind]
    if kind == "flipped-jpeg":  # may still decode (JPEG is forgiving): then it must be a proper image
        try:
            out = load_image_bytes(data, name="x.jpg")
            assert out.dtype == np.uint8 and out.shape == (64, 64, 3)
        except ImageError:
            pass
        return
    with pytest.raises(ImageError, match=r"^photo\.jpg: "):
        load_image_bytes(data, name="photo.jpg")
    with pytest.raises(BadImage) as info:
        decode_image(data)
    assert info.value.reason == (data_images.TRUNCATED if kind.startswith("truncated") else data_images.NOT_AN_IMAGE)


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "hello")
    return buf.getvalue()


# --------------------------------------------------------------------------- models


def _lambda_model(marker: Path):
    import keras

    # The Lambda's code touches `marker` when it runs: loading in unsafe mode would run it.
    fn = eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1]")  # noqa: S307
    inp = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(fn)(inp)
    out = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inp, out)
    marker.unlink(missing_ok=True)  # building it ran the lambda once
    return model


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_model_is_refused_and_its_code_never_runs(tmp_path: Path, suffix: str) -> None:
    from fer_core.store.model_files import load_model_file

    marker = tmp_path / "lambda-ran"
    path = tmp_path / f"upload{suffix}"
    _lambda_model(marker).save(path)
    assert not marker.exists()
    with pytest.raises(ModelFileError, match="Lambda"):
        load_model_file(path)
    assert not marker.exists(), "the Lambda layer's code ran while loading the file"


def test_lambda_payload_would_run_without_safe_mode(tmp_path: Path) -> None:
    """Control for the test above: the same file loaded by Keras unsafely does run the code."""
    import keras

    marker = tmp_path / "lambda-ran"
    path = tmp_path / "upload.keras"
    _lambda_model(marker).save(path)
    keras.saving.load_model(path, safe_mode=False)
    assert marker.exists()


@pytest.mark.parametrize("name, data", [
    ("notes.keras", b"just text"),
    ("archive.keras", None),  # a zip that is not a Keras archive
    ("photo.h5", b"\xff\xd8\xff\xe0" + bytes(100)),
    ("model.pkl", b"\x80\x04\x95"),  # a pickle: never unpickled
])
def test_non_keras_files_are_refused(tmp_path: Path, name: str, data: bytes | None) -> None:
    from fer_core.store.model_files import load_model_file

    path = tmp_path / name
    path.write_bytes(_zip_bytes() if data is None else data)
    with pytest.raises(ModelFileError, match=name.replace(".", r"\.")):
        load_model_file(path)


# --------------------------------------------------------------------------- the app (AppTest)


def _app():
    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[1]
    return AppTest.from_file(str(root / "streamlit_app.py"), default_timeout=180).run()


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


@pytest.mark.slow
def test_dataset_page_refuses_hostile_uploads(tmp_path: Path, layout, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zip slip, zip bomb, wrong CSVs, a non-zip: a clear error each, the demo set stays, nothing escapes."""
    from fer_core.data import cache
    from fer_core.paths import cache_dir

    monkeypatch.setattr(cache, "MAX_KEPT_UPLOADS", 10)  # keep all six uploads to look at their names

    rows_bad = "emotion,pixels,Usage\n9,1 2 3,Training\nx,,PublicTest\n"
    uploads = {
        "../../../slip.zip": (_zip(tmp_path / "a.zip", {**layout, "../../evil.png": b"x"}).read_bytes(), "unsafe zip"),
        "/etc/abs.zip": (_zip(tmp_path / "b.zip", {**layout, "/tmp/evil.png": b"x"}).read_bytes(), "absolute path"),
        "bomb.zip": (_zip(tmp_path / "c.zip", {**layout, "train/happy/b.png": bytes(20 << 20)}).read_bytes(), "zip bomb"),
        "wrong-columns.csv": (b"label,image,Usage\n1,2,3\n", "needs 'emotion' and 'pixels'"),
        "bad-rows.csv": (rows_bad.encode(), "no usable images"),
        "renamed.zip": (b"%PDF-1.4 not a zip", "not a readable zip"),
    }
    at = _app()
    at.switch_page("app_pages/dataset.py").run()
    at.segmented_control(key="ds_choice").set_value("Upload a zip or CSV").run()
    outside_before = sorted(p.name for p in tmp_path.parent.iterdir())
    for name, (data, expected) in uploads.items():
        mime = "text/csv" if name.endswith(".csv") else "application/zip"
        at.file_uploader(key="ds_upload").upload(name, data, mime).run()
        assert not at.exception, [e.value for e in at.exception]
        errs = _errors(at)
        assert any(expected in e for e in errs), (name, errs)
        assert not any("Traceback" in e for e in errs)
        # the previous dataset (the demo set) stays selected
        assert "dataset_source" not in at.session_state or at.session_state["dataset_source"] == "demo", name
    saved = sorted(p.name for p in (cache_dir() / "uploads").iterdir())
    assert saved and all("/" not in n and not n.startswith(".") for n in saved), saved
    assert any(n.endswith("-slip.zip") for n in saved) and any(n.endswith("-abs.zip") for n in saved)
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == outside_before
    assert not list(cache_dir().parent.glob("slip.zip")) and not Path("/etc/abs.zip").exists()


@pytest.mark.slow
def test_predict_page_reports_each_hostile_image_and_still_predicts_the_good_one(tiny_store) -> None:
    from tests.app_helpers import astronaut_bgr, install_tiny_run, jpeg_bytes

    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    good = jpeg_bytes(astronaut_bgr())
    hostile = {
        "bomb.png": (_png_header_claiming(30000, 30000), "MP allowed"),
        "cut.jpg": (good[: len(good) // 2], "corrupt or truncated"),
        "notes.jpg": (b"meeting notes, not a photo\n" * 20, "not an image"),
        "archive.png": (_zip_bytes(), "not an image"),
        "page.webp": (b"<!doctype html><script>alert(1)</script>", "not an image"),
        "empty.jpg": (b"", "empty"),
    }
    at = _app()
    at.switch_page("app_pages/predict.py").run()
    up = at.file_uploader(key="pred_upload")
    for name, (data, _) in hostile.items():
        up.upload(name, data, "image/jpeg")
    up.upload("astronaut.jpg", good, "image/jpeg")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    errs = _errors(at)
    for name, (_, expected) in hostile.items():
        assert any(name in e and expected in e for e in errs), (name, errs)
    assert not any("Traceback" in e for e in errs)
    head = "\n".join(m.value for m in at.markdown)
    assert f"{len(hostile)} unreadable" in head and "1 face" in head, head
