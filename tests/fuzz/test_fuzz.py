"""Property-based fuzzing (hypothesis) of every loader and of the predict entry points.

Each target gets generated hostile input: random bytes, valid files that are truncated,
bit-flipped or carry patched (huge / zero) dimensions, formats spliced onto other bodies,
zips with escaping / absolute / odd member names, bombs and damaged data, CSVs with wrong
columns, labels, pixel counts and huge rows, frames of every dtype and shape. The property
is always the same: the call returns a well-formed result or raises the documented
user-facing error type (a FerError subclass): no other exception, no crash, and nothing
is written outside the case's own run folder (checked after every case).

Deterministic for CI: `derandomize=True`, no example database. The number of cases each
target ran is printed at the end of the pytest run ("fuzz cases run") and written to
artifacts/fuzz_counts.json (see tests/fuzz/conftest.py). FER_FUZZ_SCALE=<float> multiplies
the example counts (e.g. 10 for a longer local run).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import struct
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fer_core.data import ZipLimits, load_dataset
from fer_core.data import images as data_images
from tests import samples as S
from fer_core.data.images import BadImage, decode_image
from fer_core.errors import DatasetError, FerError, ImageError, ModelFileError, UnsafeArchiveError
from fer_core.inference.images import MAX_IMAGE_PIXELS, load_image_bytes
from fer_core.labels import FER_LABELS
from tests.fuzz.counts import count

pytestmark = [pytest.mark.slow,
              # Pillow and zipfile warn about the damage they are fed: expected here, not interesting
              pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::RuntimeWarning")]

SCALE = float(os.environ.get("FER_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("FER_FUZZ_RANDOM") == "1"  # explore with fresh random cases (not for CI)
TOKEN = "fzescape"  # in every escaping member name: must never show up on disk


def fuzz(n: int):
    """Deterministic hypothesis settings with about `n` examples."""
    return settings(
        max_examples=max(1, int(n * SCALE)),
        derandomize=not RANDOM,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


# --------------------------------------------------------------------------- the sandbox


def _tree(base: Path, skip: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(base):
        d = Path(dirpath)
        if d == skip:
            dirnames[:] = []
            continue
        dirnames[:] = [n for n in dirnames if d / n != skip]
        out.update(str((d / n).relative_to(base)) for n in dirnames + filenames)
    return out


class Sandbox:
    """One run folder per case: cwd, FER_CACHE_DIR and FER_MODELS_DIR point into it.

    After the case, nothing may have appeared (or vanished) elsewhere under the test's base
    folder, nor anywhere named after TOKEN in /tmp, the project or the base's parent.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.n = 0
        (base / "runs").mkdir(parents=True, exist_ok=True)
        self.watch = [Path("/tmp"), Path.cwd(), base.parent]

    @contextlib.contextmanager
    def case(self) -> Iterator[Path]:
        self.n += 1
        run = self.base / "runs" / f"case{self.n}"
        run.mkdir()
        before = _tree(self.base, run)
        saved_env = {k: os.environ.get(k) for k in ("FER_CACHE_DIR", "FER_MODELS_DIR")}
        cwd = os.getcwd()
        os.chdir(run)
        os.environ["FER_CACHE_DIR"] = str(run / "cache")
        os.environ["FER_MODELS_DIR"] = str(run / "models")
        try:
            yield run
        finally:
            os.chdir(cwd)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            after = _tree(self.base, run)
            shutil.rmtree(run, ignore_errors=True)
        assert after == before, f"written outside the run folder: {sorted(after ^ before)[:5]}"
        for w in self.watch:
            assert not list(w.glob(f"*{TOKEN}*")), f"an escaping name reached {w}"


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path / "sandbox")


# --------------------------------------------------------------------------- image bytes

IMAGE_EXTS = [".png", ".jpg", ".bmp", ".webp", ".tiff", ".gif"]


@st.composite
def valid_images(draw) -> bytes:
    ext = draw(st.sampled_from(IMAGE_EXTS))
    w, h = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    channels = draw(st.sampled_from([1, 3] if ext in (".jpg", ".gif") else [1, 3, 4]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    img = rng.integers(0, 256, (h, w, channels) if channels > 1 else (h, w), dtype=np.uint8)
    if ext == ".gif":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img if channels == 1 else img[..., ::-1]).save(buf, format="GIF")
        return buf.getvalue()
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def _patch_size(data: bytes, w: int, h: int) -> bytes:
    """Write (w, h) into the header's dimension fields (PNG IHDR, JPEG SOF, BMP, GIF)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return data[:16] + struct.pack(">II", w & 0xFFFFFFFF, h & 0xFFFFFFFF) + data[24:]
    if data[:3] == b"\xff\xd8\xff":
        for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
            sof = data.find(marker)
            if sof > 0:
                return data[: sof + 5] + struct.pack(">HH", h & 0xFFFF, w & 0xFFFF) + data[sof + 9:]
    if data[:2] == b"BM" and len(data) >= 26:
        return data[:18] + struct.pack("<ii", w & 0x7FFFFFFF, h & 0x7FFFFFFF) + data[26:]
    if data[:3] == b"GIF" and len(data) >= 10:
        return data[:6] + struct.pack("<HH", w & 0xFFFF, h & 0xFFFF) + data[10:]
    return data


MAGICS = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"RIFF\x00\x00\x00\x00WEBPVP8 ",
          b"II*\x00", b"MM\x00*", b"PK\x03\x04", b"%PDF-1.4\n", b"\x89HDF\r\n\x1a\n"]


@st.composite
def hostile_image_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "text", "valid", "truncated", "flipped", "patched", "spliced"]))
    if kind == "random":
        return draw(st.binary(max_size=2048))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if kind == "spliced":
        return draw(st.sampled_from(MAGICS)) + draw(st.binary(max_size=1024))
    data = draw(valid_images())
    if kind == "truncated":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if kind == "flipped":
        raw = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] = draw(st.integers(0, 255))
        return bytes(raw)
    if kind == "patched":
        big = st.one_of(st.integers(0, 3), st.integers(4000, 70000), st.integers(0, 2**32 - 1))
        return _patch_size(data, draw(big), draw(big))
    return data


# Cases the fuzzer found while this suite was written (fixed; kept as explicit examples).


def _bmp_taller_than_opencv_allows() -> bytes:
    raw = bytearray(cv2.imencode(".bmp", np.zeros((1, 1), np.uint8))[1].tobytes())
    raw[22:26] = struct.pack("<i", 1_048_577)  # cv2.imdecode raised cv2.error on it
    return bytes(raw)


def _zip_with_empty_member_name() -> tuple[bytes, bool, bool]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("\x00x.png"), b"x")  # stored as "": ZipInfo.is_dir() raised IndexError
    return buf.getvalue(), False, False


def _zip_with_damaged_csv() -> tuple[bytes, bool, bool]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fer2013.csv", S.csv_text(S.sample_images(per_class=1, seed=1)).encode() * 10)
    raw = bytearray(buf.getvalue())
    for k in range(2100, 2200):  # inside the deflate stream: reading it raised zlib.error
        raw[k] ^= 0x55
    return bytes(raw), False, True


DATA_REASONS = {data_images.NOT_AN_IMAGE, data_images.CORRUPT, data_images.TRUNCATED,
                data_images.TOO_LARGE, data_images.EMPTY}


@fuzz(2000)
@given(data=hostile_image_bytes())
@example(data=_bmp_taller_than_opencv_allows())
def test_dataset_image_decoder(data: bytes) -> None:
    """fer_core.data.images.decode_image: a 48x48 gray face, or BadImage with a short reason."""
    count("data.images.decode_image")
    try:
        img, resized = decode_image(data)
    except BadImage as exc:
        assert exc.reason in DATA_REASONS, exc.reason
        return
    assert img.dtype == np.uint8 and img.shape == (48, 48) and isinstance(resized, bool)


@fuzz(1500)
@given(data=hostile_image_bytes())
@example(data=_bmp_taller_than_opencv_allows())
def test_upload_image_decoder(data: bytes) -> None:
    """fer_core.inference.images.load_image_bytes (Predict uploads, snapshots): BGR uint8, or ImageError."""
    count("images.load_image_bytes")
    try:
        img = load_image_bytes(data, name="upload.jpg")
    except ImageError as exc:
        assert str(exc).startswith("upload.jpg:"), str(exc)
        return
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert 0 < img.shape[0] * img.shape[1] <= MAX_IMAGE_PIXELS


# --------------------------------------------------------------------------- CSV

_GOOD_PIXELS = " ".join(map(str, np.random.default_rng(0).integers(0, 256, 48 * 48)))
_PIXEL_FIELDS = [
    _GOOD_PIXELS,
    " ".join(_GOOD_PIXELS.split()[:-1]),  # 2303 values
    _GOOD_PIXELS + " 7",  # 2305 values
    _GOOD_PIXELS.replace(" 1", " x", 1),  # non-numeric
    _GOOD_PIXELS.replace(" 1", " 1.5", 1),
    _GOOD_PIXELS.replace(" 1", " 256", 1),  # out of range
    _GOOD_PIXELS.replace(" 1", " -1", 1),
    " ".join(["9"] * 30000),  # a huge row (> 64 KiB)
    "",
    '"' + _GOOD_PIXELS + '"',
]
HEADERS = [b"emotion,pixels,Usage", b"emotion,pixels", b"pixels,emotion,Usage", b"\xef\xbb\xbfemotion,pixels,Usage",
           b"Usage,pixels,emotion", b"label,pixels,Usage", b"emotion;pixels;Usage", b"emotion", b""]


@st.composite
def csv_rows(draw) -> bytes:
    label = draw(st.one_of(st.integers(-3, 10).map(str), st.sampled_from(["", "x", "3.0", " 4 ", '"2"', "1e1", "\x00"]),
                           st.text(max_size=6)))
    pixels = draw(st.one_of(st.sampled_from(_PIXEL_FIELDS), st.text(max_size=40)))
    usage = draw(st.one_of(st.sampled_from(["Training", "PublicTest", "PrivateTest", "training", "Validation", ""]),
                           st.text(max_size=8)))
    fields = [label, pixels, usage]
    extra = draw(st.integers(-1, 1))
    fields = fields[:-1] if extra < 0 else fields + ["extra"] * extra
    row = ",".join(fields).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        row = draw(st.binary(max_size=120))
    return row


@st.composite
def csv_documents(draw) -> bytes:
    header = draw(st.one_of(st.sampled_from(HEADERS), st.binary(max_size=60)))
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    rows = draw(st.lists(csv_rows(), max_size=10))
    return eol.join([header, *rows]) + (eol if draw(st.booleans()) else b"")


def _check_dataset(ds) -> None:
    assert ds.num_images > 0
    for split in ds.splits.values():
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (48, 48)
        assert len(split.images) == len(split.labels) == len(split.sources)
        assert ((split.labels >= 0) & (split.labels < len(FER_LABELS))).all()


@fuzz(500)
@given(doc=csv_documents(), suffix=st.sampled_from([".csv", ".txt", ""]))
def test_csv_loader(sandbox: Sandbox, doc: bytes, suffix: str) -> None:
    """load_dataset on a CSV: a Dataset of valid rows (bad rows skipped), or DatasetError."""
    count("data.load_dataset(csv)")
    with sandbox.case() as run:
        path = run / f"upload{suffix}"
        path.write_bytes(doc)
        try:
            ds = load_dataset(path)
        except DatasetError:
            return
        _check_dataset(ds)
        assert ds.num_images <= doc.count(b"\n") + 1


# --------------------------------------------------------------------------- zips

_SPLITS = ["train", "test", "Training", "PrivateTest", "val", "TRAIN"]
_CLASSES = ["happy", "Angry", "disgust", "fear", "sad", "surprise", "neutral", "contempt", "7"]
ESCAPING = [f"../{TOKEN}.png", f"train/happy/../../../{TOKEN}.png", f"/tmp/{TOKEN}.png", f"C:/{TOKEN}.png",
            f"c:{TOKEN}.png", f"train\\..\\..\\{TOKEN}.png", f"\\\\server\\share\\{TOKEN}.png", f"..\\{TOKEN}.csv",
            f"fer/train/happy/../../../../{TOKEN}.jpg"]


def _is_escaping(name: str) -> bool:
    p = name.split("\x00")[0].replace("\\", "/")
    return p.startswith("/") or (len(p) > 1 and p[1] == ":" and p[0].isalpha()) or ".." in p.split("/")


member_names = st.one_of(
    st.builds(lambda s, c, i, e: f"{s}/{c}/{i}{e}", st.sampled_from(_SPLITS), st.sampled_from(_CLASSES),
              st.integers(0, 99), st.sampled_from([".png", ".jpg", ".JPG", ".txt", ""])),
    st.builds(lambda top, s, c: f"{top}/{s}/{c}/x.png", st.sampled_from(["fer2013", "__MACOSX", ".hidden", "a/b"]),
              st.sampled_from(_SPLITS), st.sampled_from(_CLASSES)),
    st.sampled_from(ESCAPING),
    st.sampled_from(["fer2013.csv", "data/fer2013.csv", "train/", "notes.txt"]),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30),
)


@st.composite
def member_contents(draw) -> bytes:
    kind = draw(st.sampled_from(["image", "image", "csv", "zeros", "random"]))
    if kind == "image":
        return draw(hostile_image_bytes())
    if kind == "csv":
        return draw(csv_documents())
    if kind == "zeros":  # compresses ~1000x: a bomb for the small limits below
        return bytes(draw(st.integers(0, 400_000)))
    return draw(st.binary(max_size=512))


SMALL_LIMITS = ZipLimits(max_members=6, max_total_size=300_000, max_member_size=150_000, max_ratio=50,
                         ratio_min_size=20_000)


@st.composite
def hostile_zips(draw) -> tuple[bytes, bool, bool]:
    """(zip bytes, has an escaping member name, was damaged after writing)."""
    good = draw(st.booleans())
    members = []
    if good:  # start from a valid Kaggle-layout zip, then add hostile members
        members += list(S.layout_files(S.sample_images(per_class=1, seed=draw(st.integers(0, 3)))).items())[:8]
    members += draw(st.lists(st.tuples(member_names, member_contents()), max_size=6))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are part of the test
        for name, content in members:
            method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
            with contextlib.suppress(ValueError):  # names zipfile itself refuses to write
                zf.writestr(zipfile.ZipInfo(name), content, compress_type=method)
        written = [i.filename for i in zf.infolist()]
    data = buf.getvalue()
    damage = draw(st.sampled_from(["none", "none", "flip", "truncate", "lie"]))
    if damage == "flip" and data:
        raw = bytearray(data)
        for _ in range(draw(st.integers(1, 16))):
            raw[draw(st.integers(0, len(raw) - 1))] ^= draw(st.integers(1, 255))
        data = bytes(raw)
    elif damage == "truncate":
        data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    elif damage == "lie":  # central-directory sizes that lie about the members
        raw = bytearray(data)
        pos = raw.find(b"PK\x01\x02")
        while pos >= 0:
            raw[pos + 24: pos + 28] = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little")
            pos = raw.find(b"PK\x01\x02", pos + 4)
        data = bytes(raw)
    return data, any(_is_escaping(n) for n in written), damage != "none"


@fuzz(800)
@given(z=hostile_zips(), small=st.booleans())
@example(z=_zip_with_empty_member_name(), small=False)
@example(z=_zip_with_damaged_csv(), small=False)
def test_zip_loader(sandbox: Sandbox, z: tuple[bytes, bool, bool], small: bool) -> None:
    """load_dataset on a zip: a Dataset, or DatasetError; escaping names are always refused."""
    count("data.load_dataset(zip)")
    data, escaping, damaged = z
    with sandbox.case() as run:
        path = run / "upload.zip"
        path.write_bytes(data)
        try:
            ds = load_dataset(path, limits=SMALL_LIMITS if small else None)
        except UnsafeArchiveError:
            return
        except DatasetError:
            assert damaged or not escaping, "a zip with an escaping member must be refused as unsafe"
            return
        assert damaged or not escaping, "a zip with an escaping member was loaded"
        _check_dataset(ds)


# --------------------------------------------------------------------------- folders and odd files


@st.composite
def hostile_trees(draw) -> list[tuple[str, bytes | str]]:
    """(relative path, bytes) files, or (relative path, "->target") symlinks."""
    entries = []
    for _ in range(draw(st.integers(0, 8))):
        name = draw(st.one_of(
            st.builds(lambda s, c, i: f"{s}/{c}/{i}.png", st.sampled_from(_SPLITS), st.sampled_from(_CLASSES),
                      st.integers(0, 9)),
            st.sampled_from(["fer2013.csv", "x/fer2013.csv", ".hidden/train/happy/a.png"]),
            st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"), min_size=1, max_size=20),
        ))
        if draw(st.integers(0, 7)) == 0:
            entries.append((name, "->" + draw(st.sampled_from(["/etc/passwd", "/dev/zero", "..", "/", "/proc/self/mem"]))))
        else:
            entries.append((name, draw(st.one_of(member_contents(), csv_documents()))))
    return entries


@fuzz(200)
@given(tree=hostile_trees())
@example(tree=[("fer2013.csv", "->/proc/self/mem")])  # reading its head raised OSError (EIO)
def test_folder_loader(sandbox: Sandbox, tree) -> None:
    """load_dataset on an extracted folder (odd names, symlinks out of it): a Dataset or DatasetError."""
    count("data.load_dataset(folder)")
    with sandbox.case() as run:
        root = run / "tree"
        root.mkdir()
        for name, content in tree:
            p = root / name
            with contextlib.suppress(OSError):
                p.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, str):
                    if not p.exists() and not p.is_symlink():
                        p.symlink_to(content[2:])
                elif not p.is_dir():
                    p.write_bytes(content)
        try:
            ds = load_dataset(root)
        except DatasetError:
            return
        _check_dataset(ds)


@fuzz(400)
@given(data=st.one_of(st.binary(max_size=4096), st.sampled_from(MAGICS).flatmap(lambda m: st.binary(max_size=512).map(lambda b: m + b))),
       suffix=st.sampled_from([".zip", ".csv", ".jpg", ".data", ""]))
def test_any_file_as_dataset(sandbox: Sandbox, data: bytes, suffix: str) -> None:
    """Any file handed to load_dataset: a Dataset or DatasetError, never another exception."""
    count("data.load_dataset(any file)")
    with sandbox.case() as run:
        path = run / f"upload{suffix}"
        path.write_bytes(data)
        try:
            ds = load_dataset(path)
        except DatasetError:
            return
        _check_dataset(ds)


# --------------------------------------------------------------------------- predict entry points


class StubClassifier:
    """Deterministic probabilities from the crops' mean brightness (no TensorFlow)."""

    def predict_proba(self, crops):
        out = []
        for c in crops:
            c = np.asarray(c, dtype=np.float32)
            logits = np.arange(7, dtype=np.float32) * (float(c.mean()) / 255.0 if c.size else 0.0)
            e = np.exp(logits - logits.max())
            out.append(e / e.sum())
        return np.array(out, dtype=np.float32).reshape(len(out), 7)


@pytest.fixture(scope="module")
def detectors():
    from fer_core.inference.faces import available_detectors, make_detector

    return {name: make_detector(name, max_width=960) for name in available_detectors() if name != "mtcnn"}


_DTYPES = [np.uint8, np.uint8, np.uint8, np.uint16, np.float32, np.int64, np.bool_]


@st.composite
def frames(draw):
    kind = draw(st.sampled_from(["array", "array", "array", "face", "none", "other"]))
    if kind == "none":
        return None
    if kind == "other":
        return draw(st.sampled_from(["a string", b"bytes", [[1, 2], [3, 4]], 3.5, np.float64(2.0)]))
    if kind == "face":  # a real face photo, cropped / scaled / rotated
        from tests.app_helpers import astronaut_bgr

        img = astronaut_bgr()
        y0, x0 = draw(st.integers(0, 200)), draw(st.integers(0, 250))
        crop = img[y0: y0 + draw(st.integers(1, 312)), x0: x0 + draw(st.integers(1, 262))]
        f = draw(st.sampled_from([0.1, 0.5, 1.0, 2.0]))
        crop = cv2.resize(crop, (max(1, int(crop.shape[1] * f)), max(1, int(crop.shape[0] * f))))
        return np.ascontiguousarray(np.rot90(crop, draw(st.integers(0, 3))))
    dtype = draw(st.sampled_from(_DTYPES))
    h, w = draw(st.integers(0, 96)), draw(st.integers(0, 96))
    shape = draw(st.sampled_from([(h, w), (h, w, 1), (h, w, 3), (h, w, 4), (h, w, 2), (h, w, 5), (h,), (h, w, 3, 1)]))
    if draw(st.integers(0, 15)) == 0:
        shape = draw(st.sampled_from([(1, 4000, 3), (4000, 1, 3), (1, 1, 3), (2, 3000)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    arr = rng.integers(0, 256, shape).astype(dtype)
    if draw(st.booleans()) and arr.ndim >= 2 and arr.shape[1] > 1:
        arr = arr[:, ::2]  # non-contiguous view
    return arr


@fuzz(500)
@given(batch=st.lists(frames(), min_size=1, max_size=4), whole=st.booleans(), det=st.sampled_from(["yunet", "haar"]))
@example(batch=[np.full((32767, 1, 3), 128, np.uint8)], whole=True, det="haar")  # crop_face raised cv2.error
def test_predict_images(detectors, batch, whole: bool, det: str) -> None:
    """batch_predict.predict_images + annotate + results CSV: one result per input, errors as results."""
    from fer_core.inference.batch_predict import annotate, predict_images, results_csv, results_table

    count("batch_predict.predict_images")
    detector = detectors.get(det) or next(iter(detectors.values()))
    results = predict_images([(f"img{i}", x) for i, x in enumerate(batch)], detector, StubClassifier(), whole)
    assert len(results) == len(batch)
    for r, x in zip(results, batch):
        if r.error:
            assert isinstance(r.error, str) and not r.faces
            continue
        for f in r.faces:
            assert f.label in FER_LABELS and f.probabilities.shape == (7,)
        annotated = annotate(x, r)
        assert annotated.dtype == np.uint8 and annotated.ndim == 3
    assert results_csv(results_table(results)).startswith("file,")


@fuzz(400)
@given(stream=st.lists(frames(), min_size=1, max_size=6), det=st.sampled_from(["yunet", "haar"]))
def test_webcam_pipeline(detectors, stream, det: str) -> None:
    """realtime.FramePipeline.process (the webcam callback): never raises, counts bad frames."""
    from fer_core.inference.realtime import FramePipeline

    count("realtime.FramePipeline.process")
    pipeline = FramePipeline(detectors.get(det) or next(iter(detectors.values())), StubClassifier(),
                             detect_every=2, show_fps=True)
    for x in stream:
        out, results = pipeline.process(x)
        assert out is not None or x is None
        assert isinstance(results, list)
    s = pipeline.stats()
    assert s["frames"] + s["skipped_frames"] == len(stream)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """A model store with one tiny real Keras model (TensorFlow is imported here)."""
    import keras

    from fer_core.inference.classifier import EmotionClassifier
    from fer_core.store.runs import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("fuzz-models"))
    run = store.create_run({"architecture": "tiny", "labels": list(FER_LABELS), "input_shape": [48, 48, 1]})
    keras.utils.set_random_seed(0)
    inp = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(2, 3, strides=4)(inp)
    out = keras.layers.Dense(7, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    store.save_model(run.run_id, keras.Model(inp, out))
    store.update_meta(run.run_id, status="finished")
    classifier = EmotionClassifier.from_store(store, run.run_id, warm_up_to=1)
    return store, run.run_id, classifier


@fuzz(120)
@given(files=st.lists(st.tuples(hostile_image_bytes(), st.sampled_from([".jpg", ".png", ".webp", ".gif", ""])),
                      min_size=1, max_size=3))
def test_predict_sources(sandbox: Sandbox, tiny_store, detectors, files) -> None:
    """sources.predict_sources on files (the CLI's predict) and on a zip of them (the Predict page):
    one result per file, in order, errors as results."""
    import zipfile

    from fer_core.inference.sources import path_sources, predict_sources, upload_sources

    count("sources.predict_sources")
    store, run_id, classifier = tiny_store
    detector = detectors["haar"] if "haar" in detectors else "auto"
    if isinstance(detector, str):
        from fer_core.inference.faces import make_detector

        detector = make_detector(detector)
    with sandbox.case() as run:
        paths = []
        for i, (data, ext) in enumerate(files):
            p = run / f"photo{i}{ext}"
            p.write_bytes(data)
            paths.append(p)
        results = [r for r, _ in predict_sources(path_sources(paths), detector, classifier, True, chunk_size=2)]
        assert [r.name for r in results] == [p.name for p in paths]
        for r in results:
            assert r.status in ("error", "no face", "faces", "whole image")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for p in paths:
                zf.writestr(f"in/{p.name}", p.read_bytes())
        zipped = [r for r, _ in predict_sources(upload_sources([("photos.zip", buf.getvalue())]), detector, classifier)]
        assert all(r.status in ("error", "no face", "faces", "whole image") for r in zipped)


@st.composite
def non_model_files(draw) -> tuple[bytes, str]:
    kind = draw(st.sampled_from(["random", "magic", "zip"]))
    ext = draw(st.sampled_from([".keras", ".h5", ".hdf5"]))
    if kind == "random":
        return draw(st.binary(max_size=2048)), ext
    if kind == "magic":
        return draw(st.sampled_from(MAGICS)) + draw(st.binary(max_size=512)), ext
    buf = io.BytesIO()
    json_text = st.one_of(
        st.sampled_from(['{}', '[]', 'null', '{"class_name": "Functional", "config": {}}',
                         '{"class_name": "Lambda", "config": {"function": "os.system"}}',
                         '{"module": "os", "class_name": "system", "config": {}}',
                         '{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda"}]}}']),
        st.text(max_size=80))
    with zipfile.ZipFile(buf, "w") as zf:
        for name in draw(st.lists(st.sampled_from(["config.json", "metadata.json", "model.weights.h5", "x.txt"]),
                                  unique=True, max_size=3)):
            zf.writestr(name, draw(json_text) if name.endswith(".json") else draw(st.binary(max_size=256)))
    return buf.getvalue(), ".keras"


@fuzz(150)
@given(f=non_model_files())
def test_load_model_file_non_models(sandbox: Sandbox, tiny_store, f) -> None:
    """store.load_model_file on files that are not models: ModelFileError, nothing executed."""
    from fer_core.store.model_files import load_model_file

    count("store.load_model_file(non-model)")
    data, ext = f
    with sandbox.case() as run:
        path = run / f"upload{ext}"
        path.write_bytes(data)
        try:
            model = load_model_file(path, num_classes=7)
        except ModelFileError:
            return
        assert callable(model)


def test_errors_are_fer_errors() -> None:
    """The fuzz properties above accept only these (all user-facing FerError subclasses)."""
    for cls in (BadImage, ImageError, DatasetError, UnsafeArchiveError, ModelFileError):
        assert issubclass(cls, FerError)
