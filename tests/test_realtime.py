"""Classifier, real-time pipeline and batch prediction (small Keras models built here)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from fer_core.inference.batch_predict import ImageResult, annotate, predict_images, results_table
from fer_core.inference.classifier import EmotionClassifier
from fer_core.inference.boxes import Box
from fer_core.inference.faces import YuNetDetector
from fer_core.inference.images import from_rgb, load_image_bytes
from fer_core.labels import ALPHABETICAL_LABELS, FER_LABELS, reorder_probabilities
from fer_core.preprocess import prepare_faces
from fer_core.inference.realtime import DEFAULT_DOWNSCALE_WIDTH, FramePipeline
from fer_core.inference.tracking import Tracker
from fer_core.inference.crops import DEFAULT_MARGIN, crop_face

import keras  # noqa: E402
from skimage import data as skimage_data  # noqa: E402


def tiny_model(channels: int = 1, size: int = 48, softmax: bool = True, seed: int = 0):
    init = keras.initializers.GlorotUniform(seed=seed)
    inp = keras.Input((size, size, channels))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer=init)(inp)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(7, activation="softmax" if softmax else None, kernel_initializer=keras.initializers.GlorotUniform(seed + 2))(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def classifier(model) -> EmotionClassifier:
    return EmotionClassifier(model, FER_LABELS, (48, 48, 1), {"color": "grayscale", "scale": "0-1"})


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return from_rgb(skimage_data.astronaut())


@pytest.fixture(scope="module")
def frame640(astronaut: np.ndarray) -> np.ndarray:
    """640x480 frame with the astronaut's face (~110 px wide) in it."""
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[:, 64:576] = cv2.resize(astronaut, (512, 512))[16:496]
    return frame


def random_faces(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (int(rng.integers(30, 120)),) * 2 + (3,), dtype=np.uint8) for _ in range(n)]


# ----------------------------------------------------------------------------- classifier


def test_classifier_matches_a_direct_model_call(model, classifier: EmotionClassifier) -> None:
    for n in (1, 3, 5, 17, 70):  # padded buckets and chunks of 64
        faces = random_faces(n, seed=n)
        direct = np.asarray(model(prepare_faces(faces, (48, 48, 1), {"scale": "0-1"}), training=False))
        got = classifier.predict_proba(faces)
        assert got.shape == (n, 7)
        np.testing.assert_allclose(got, direct, atol=1e-5)
    preds = classifier.predict(random_faces(2))
    assert preds[0].label in FER_LABELS and preds[0].confidence == pytest.approx(float(preds[0].probabilities.max()))
    assert classifier.predict_proba([]).shape == (0, 7)


def test_classifier_never_retraces_and_never_calls_predict(model, classifier: EmotionClassifier, monkeypatch) -> None:
    monkeypatch.setattr(model, "predict", lambda *a, **k: pytest.fail("model.predict in the hot path"))
    for n in range(1, 20):
        classifier.predict_proba(random_faces(n))
    assert classifier.runner.call.experimental_get_tracing_count() == 1


def test_classifier_reorders_a_models_own_label_order(model) -> None:
    clf = EmotionClassifier(model, ALPHABETICAL_LABELS, warm_up_to=1)  # same network, outputs read alphabetically
    faces = random_faces(4)
    raw = np.asarray(model(prepare_faces(faces), training=False))
    np.testing.assert_allclose(clf.predict_proba(faces), reorder_probabilities(raw, ALPHABETICAL_LABELS), atol=1e-5)
    assert clf.input_shape == (48, 48, 1)
    with pytest.raises(ValueError, match="7 FER-2013 classes"):
        EmotionClassifier(model, ["a", "b"], warm_up_to=0)


def test_classifier_handles_rgb_64px_models_and_logits() -> None:
    rgb = tiny_model(channels=3, size=64, softmax=False, seed=3)
    clf = EmotionClassifier(rgb, FER_LABELS, (64, 64, 3), {"color": "rgb", "scale": "-1-1"}, warm_up_to=2)
    faces = random_faces(3)
    logits = np.asarray(rgb(prepare_faces(faces, (64, 64, 3), {"scale": "-1-1"}), training=False))
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(faces), expected, atol=1e-5)


def test_classifier_sees_bgr_crops_as_bgr(classifier: EmotionClassifier) -> None:
    red_bgr = np.zeros((48, 48, 3), np.uint8)
    red_bgr[..., 2] = 255
    x = classifier.prepare([red_bgr])
    # gray = 0.299 R + 0.587 G + 0.114 B; a swapped R/B would give 29/255 instead of 76/255
    assert x[0, 0, 0, 0] == pytest.approx(76 / 255, abs=1 / 255)


def test_classifier_from_store_reads_meta(model) -> None:
    class FakeStore:
        def load_model(self, run_id):
            assert run_id == "r1"
            return model

        def read_meta(self, run_id):
            return {"labels": list(ALPHABETICAL_LABELS), "input_shape": [48, 48, 1],
                    "preprocessing": {"color": "grayscale", "scale": "0-1"}, "name": "tiny"}

    clf = EmotionClassifier.from_store(FakeStore(), "r1", warm_up_to=1)
    assert clf.model_labels == ALPHABETICAL_LABELS and clf.name == "tiny"


def test_classifier_from_a_real_model_store(tmp_path, model) -> None:
    from fer_core.store.runs import ModelStore

    store = ModelStore(tmp_path)
    run = store.create_run({"architecture": "tiny", "labels": list(FER_LABELS), "input_shape": [48, 48, 1],
                            "preprocessing": {"color": "grayscale", "scale": "0-1"}, "status": "finished"})
    store.save_model(run.run_id, model)
    clf = EmotionClassifier.from_store(store, run.run_id, warm_up_to=1)
    faces = random_faces(2)
    np.testing.assert_allclose(clf.predict_proba(faces), np.asarray(model(prepare_faces(faces))), atol=1e-5)


def test_saliency_heatmap(classifier: EmotionClassifier, astronaut: np.ndarray) -> None:
    face = astronaut[60:180, 170:280]
    heat = classifier.saliency(face)
    assert heat.shape == face.shape[:2] and heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0
    assert classifier.saliency(face, "happy").shape == face.shape[:2]


# ----------------------------------------------------------------------------- pipeline


class FixedDetector:
    """Finds the same boxes (given in 640-px-wide frame pixels) in every frame, at the frame's scale."""

    name = "fixed"

    def __init__(self, boxes: Sequence[Box]):
        self.boxes = list(boxes)
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        return [b.scaled(frame.shape[1] / 640) for b in self.boxes]


class ScriptedClassifier:
    """Returns scripted probabilities (one row per call, per face) and keeps the crops it saw."""

    def __init__(self, rows: Sequence[np.ndarray] | None = None):
        self.rows = list(rows or [])
        self.crops: list[list[np.ndarray]] = []

    def predict_proba(self, faces):
        self.crops.append([np.array(f) for f in faces])
        row = self.rows[(len(self.crops) - 1) % len(self.rows)] if self.rows else np.full(7, 1 / 7, np.float32)
        return np.tile(np.asarray(row, np.float32), (len(faces), 1))


def test_pipeline_classifies_the_face_like_the_model(frame640: np.ndarray, classifier: EmotionClassifier) -> None:
    pipe = FramePipeline(YuNetDetector(), classifier, detect_every=1, smoothing_window=1)
    out, results = pipe.process(frame640)
    assert len(results) == 1
    r = results[0]
    assert 200 < r.box.center[0] < 420 and 40 < r.box.center[1] < 200
    crop = crop_face(frame640, r.box, pipe.margin, pipe.align)
    direct = np.asarray(classifier.model(prepare_faces([crop]), training=False))[0]
    np.testing.assert_allclose(r.probabilities, direct, atol=1e-5)
    assert r.label == FER_LABELS[int(np.argmax(direct))] and r.detected
    assert not np.array_equal(out, frame640)  # drawn on a copy
    assert out is not frame640 and np.array_equal(frame640[0, 0], [90, 90, 90])
    s = pipe.stats()
    assert s["frames"] == 1 and s["errors"] == 0 and s["latency_ms_p50"] > 0


def test_frame_without_face_passes_through_untouched(classifier: EmotionClassifier) -> None:
    pipe = FramePipeline(YuNetDetector(), classifier)
    blank = np.full((480, 640, 3), 37, np.uint8)
    before = blank.copy()
    for _ in range(4):
        out, results = pipe.process(blank)
        assert results == [] and out is blank and np.array_equal(out, before)
    pipe.configure(show_fps=True)
    out, _ = pipe.process(blank)
    assert not np.array_equal(out, before) and np.array_equal(blank, before)  # FPS text only when asked


@pytest.mark.parametrize(
    "bad",
    [None, np.zeros((0, 0, 3), np.uint8), np.zeros((480, 640, 3), np.float32), np.zeros((48, 48, 2), np.uint8),
     np.zeros((48, 48, 5), np.uint8), np.zeros(10, np.uint8), "not a frame", np.zeros((0, 640, 3), np.uint8)],
    ids=["none", "empty", "float", "2ch", "5ch", "1d", "str", "zero-height"],
)
def test_corrupt_frames_never_crash_the_stream(bad, frame640: np.ndarray) -> None:
    clf = ScriptedClassifier()
    pipe = FramePipeline(FixedDetector([Box(250, 60, 120, 140)]), clf, detect_every=1)
    out, results = pipe.process(bad)
    assert out is bad and results == []
    assert pipe.stats()["skipped_frames"] == 1 and sum(pipe.stats()["skip_reasons"].values()) == 1
    out, results = pipe.process(frame640)  # the stream goes on
    assert len(results) == 1 and pipe.stats()["frames"] == 1


def test_gray_and_bgra_frames_are_processed(frame640: np.ndarray) -> None:
    pipe = FramePipeline(FixedDetector([Box(250, 60, 120, 140)]), ScriptedClassifier(), detect_every=1)
    for f in (cv2.cvtColor(frame640, cv2.COLOR_BGR2GRAY), cv2.cvtColor(frame640, cv2.COLOR_BGR2BGRA)):
        out, results = pipe.process(f)
        assert out.shape == (480, 640, 3) and len(results) == 1
    assert pipe.stats()["skipped_frames"] == 0


def test_classifier_failure_is_counted_not_raised(frame640: np.ndarray) -> None:
    class Broken:
        def predict_proba(self, faces):
            raise RuntimeError("boom")

    pipe = FramePipeline(FixedDetector([Box(250, 60, 120, 140)]), Broken(), detect_every=1)
    out, results = pipe.process(frame640)
    assert results == [] and out is frame640
    assert pipe.stats()["errors"] == 1 and "boom" in pipe.stats()["last_error"]


def test_pipeline_converts_colour_once_from_an_upload(frame640: np.ndarray) -> None:
    """An RGB upload is decoded to BGR once; the crop the classifier receives is still BGR."""
    rgb = cv2.cvtColor(frame640, cv2.COLOR_BGR2RGB)
    rgb[100:140, 300:340] = (255, 0, 0)  # a pure red patch (RGB) inside the face box
    buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    frame = load_image_bytes(buf)
    assert tuple(frame[120, 320]) == (0, 0, 255)
    clf = ScriptedClassifier()
    box = Box(270, 70, 100, 100)
    FramePipeline(FixedDetector([box]), clf, detect_every=1, downscale_width=None, margin=0.0, align=False).process(frame)
    crop = clf.crops[0][0]
    assert crop.shape == (100, 100, 3)
    assert tuple(crop[50, 50]) == (0, 0, 255)  # red stays in channel 2: no second swap
    np.testing.assert_array_equal(crop, frame[70:170, 270:370])


def test_smoothing_reduces_label_flicker(frame640: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(60):  # truly "happy" on average, noisy frame to frame
        p = np.full(7, 0.05, np.float32)
        p[3] = 0.42 + rng.normal(0, 0.12)
        p[4] = 0.32 + rng.normal(0, 0.12)
        rows.append(np.clip(p, 0.01, None) / np.clip(p, 0.01, None).sum())

    def label_changes(window: int) -> tuple[int, list[str]]:
        pipe = FramePipeline(FixedDetector([Box(250, 60, 120, 140)]), ScriptedClassifier(rows), detect_every=1,
                             smoothing_window=window)
        labels = [pipe.process(frame640)[1][0].label for _ in rows]
        return sum(a != b for a, b in zip(labels, labels[1:])), labels

    raw, raw_labels = label_changes(1)
    smooth, smooth_labels = label_changes(5)
    assert raw >= 10
    assert smooth * 2 <= raw
    assert smooth_labels[5:].count("happy") > raw_labels[5:].count("happy")  # closer to the truth
    pipe = FramePipeline(FixedDetector([Box(250, 60, 120, 140)]), ScriptedClassifier(rows), detect_every=1,
                         smoothing_window=5, smoothing="ema")
    ema = [pipe.process(frame640)[1][0].label for _ in rows]
    assert sum(a != b for a, b in zip(ema, ema[1:])) < raw


def test_tracking_between_detections_follows_a_moving_face(frame640: np.ndarray, classifier: EmotionClassifier) -> None:
    calls = []

    class Counting(YuNetDetector):
        def detect(self, frame):
            calls.append(1)
            return super().detect(frame)

    pipe = FramePipeline(Counting(), classifier, detect_every=3)
    assert pipe.detector.max_width == DEFAULT_DOWNSCALE_WIDTH  # the pipeline sets the detector's width
    first = pipe.process(frame640)[1][0]
    for step in range(1, 6):
        moved = np.roll(frame640, 6 * step, axis=1)
        r = pipe.process(moved)[1]
        assert len(r) == 1 and r[0].track_id == first.track_id  # same face, same id
        assert abs((r[0].box.x - first.box.x) - 6 * step) <= 4  # followed by detection or template match
    assert len(calls) == 2  # frames 0 and 3 of 6
    assert [x.detected for x in [first]] == [True]


def test_two_faces_get_two_tracks_and_one_classifier_call(frame640: np.ndarray) -> None:
    clf = ScriptedClassifier()
    boxes = [Box(40, 100, 100, 120), Box(420, 120, 110, 120)]
    pipe = FramePipeline(FixedDetector(boxes), clf, detect_every=1)
    first = pipe.process(frame640)[1]
    for _ in range(2):
        _, results = pipe.process(frame640)
    assert sorted(r.track_id for r in results) == [1, 2]
    assert [(r.track_id, r.box.x // 10) for r in results] == [(r.track_id, r.box.x // 10) for r in first]
    assert len(clf.crops) == 3 and all(len(c) == 2 for c in clf.crops)


def test_pipeline_is_safe_to_call_from_threads(frame640: np.ndarray, classifier: EmotionClassifier) -> None:
    pipe = FramePipeline(YuNetDetector(), classifier, detect_every=2)
    errors = []

    def worker() -> None:
        try:
            for _ in range(8):
                pipe.process(frame640)
                pipe.configure(smoothing_window=3)
                pipe.stats()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and pipe.stats()["frames"] == 24 and pipe.stats()["errors"] == 0


def test_classify_every_reuses_a_known_face_and_classifies_a_new_one_at_once(frame640: np.ndarray) -> None:
    one_hot = [np.eye(7, dtype=np.float32)[k] for k in (3, 4, 5, 6, 0, 1)]
    clf = ScriptedClassifier(one_hot)
    det = FixedDetector([Box(40, 100, 100, 120)])
    pipe = FramePipeline(det, clf, detect_every=1, smoothing_window=1, classify_every=2)
    labels = [pipe.process(frame640)[1][0].label for _ in range(2)]
    # frame 0: a new face, classified at once; frame 1: due ((1 + 1) % 2 == 0)
    assert [len(c) for c in clf.crops] == [1, 1] and labels == ["happy", "sad"]
    det.boxes.append(Box(420, 120, 110, 120))  # a second person enters on frame 2
    results = pipe.process(frame640)[1]
    assert [len(c) for c in clf.crops] == [1, 1, 1]  # only the newcomer was classified
    assert sorted((r.track_id, r.label) for r in results) == [(1, "sad"), (2, "surprise")]  # face 1 keeps its label
    results = pipe.process(frame640)[1]  # frame 3: both due, one batch
    assert [len(c) for c in clf.crops] == [1, 1, 1, 2]
    assert sorted(r.label for r in results) == ["neutral", "neutral"]
    every = FramePipeline(FixedDetector([Box(40, 100, 100, 120)]), ScriptedClassifier(), detect_every=1)
    for _ in range(4):
        every.process(frame640)
    assert len(every.classifier.crops) == 4  # the default classifies every frame (the video path relies on it)


def test_queued_callback_processes_the_newest_frame_and_counts_the_stale_ones(frame640: np.ndarray) -> None:
    import asyncio

    import av

    def run(coro):
        """Await in a thread of its own with its own loop, as streamlit-webrtc's worker thread does (the
        test session's main thread may already run an event loop: Playwright's)."""
        out: list = []
        worker = threading.Thread(target=lambda: out.append(asyncio.run(coro)))
        worker.start()
        worker.join()
        return out[0]
    from fer_core.inference.webrtc import webrtc_queued_callback

    pipe = FramePipeline(FixedDetector([Box(250, 60, 120, 140)]), ScriptedClassifier(), detect_every=1)
    callback = webrtc_queued_callback(pipe)
    frames = []
    for pts in (1, 2, 3):
        f = av.VideoFrame.from_ndarray(frame640, format="bgr24")
        f.pts = pts
        frames.append(f)
    out = run(callback(frames))
    assert [f.pts for f in out] == [3] and out[0].to_ndarray(format="bgr24").shape == (480, 640, 3)
    assert not np.array_equal(out[0].to_ndarray(format="bgr24"), frame640)  # the face is boxed
    assert len(pipe.last_results) == 1
    assert run(callback(frames[:1]))[0].pts == 1
    stats = pipe.stats()
    assert stats["frames"] == 2 and stats["stale_frames"] == 2
    assert np.isfinite(stats["camera_fps"]) and stats["camera_fps"] > 0
    assert run(callback([])) == []


def test_faces_under_the_users_confidence_are_drawn_as_uncertain(frame640: np.ndarray) -> None:
    from fer_core.inference.overlay import UNCERTAIN_BGR

    def grey_pixels(img: np.ndarray) -> int:
        return int((np.abs(img.astype(int) - np.array(UNCERTAIN_BGR)) <= 2).all(axis=-1).sum())

    row = np.full(7, 0.1, np.float32)
    row[3] = 0.4  # happy 40%
    pipe = FramePipeline(FixedDetector([Box(250, 60, 120, 140)]), ScriptedClassifier([row]), detect_every=1)
    sure = pipe.process(frame640)[0]
    pipe.configure(uncertain_below=0.5)
    unsure, results = pipe.process(frame640)
    assert results[0].label == "happy"  # the result keeps its label; only the drawing says uncertain
    assert grey_pixels(unsure) > grey_pixels(sure) + 200
    result = ImageResult("a.jpg", 640, 480, [results[0]])
    assert grey_pixels(annotate(frame640, result, 0.5)) > grey_pixels(annotate(frame640, result)) + 200


# ----------------------------------------------------------------------------- batch prediction


class ValueDetector:
    """Finds `v // 40` faces in an image whose pixels all equal v (a stand-in with known answers)."""

    name = "value"

    def detect(self, frame):
        v = int(frame[0, 0, 0])
        return [Box(10 + 60 * i, 10, 50, 50, 0.9) for i in range(v // 40)]


class MeanClassifier:
    """Puts all probability on class (mean pixel // 40) so each face reveals its image."""

    def __init__(self):
        self.calls = 0

    def predict_proba(self, faces):
        self.calls += 1
        out = np.zeros((len(faces), 7), np.float32)
        for i, f in enumerate(faces):
            out[i, int(np.asarray(f).mean()) // 40] = 1.0
        return out


def test_batch_prediction_groups_faces_per_image() -> None:
    images = [np.full((80, 320, 3), v, np.uint8) for v in (120, 0, 200, 40)]
    images.insert(2, None)
    clf = MeanClassifier()
    results = predict_images(images, ValueDetector(), clf, names=["a", "b", "c", "d", "e"])
    assert clf.calls == 1  # all faces of all images in one call
    assert [len(r.faces) for r in results] == [3, 0, 0, 5, 1]
    assert [r.status for r in results] == ["faces", "no face", "error", "faces", "faces"]
    for r, v in zip(results, (120, 0, None, 200, 40)):
        for f in r.faces:
            assert f.label == FER_LABELS[v // 40]
        assert [f.index for f in r.faces] == list(range(len(r.faces)))
    assert [f.box.x for f in results[3].faces] == sorted(f.box.x for f in results[3].faces)
    rows = results_table(results)
    assert len(rows) == 3 + 1 + 1 + 5 + 1
    assert rows[0]["file"] == "a" and rows[0]["face"] == 1 and rows[0]["label"] == "happy" and rows[0]["p_happy"] == 1.0
    assert rows[3]["status"] == "no face" and rows[4]["status"] == "error" and rows[4]["error"]
    assert set(rows[0]) >= {"file", "face", "x", "y", "w", "h", "label", "confidence", *(f"p_{n}" for n in FER_LABELS)}


def test_whole_image_when_no_face_and_annotation() -> None:
    img = np.full((60, 100, 3), 0, np.uint8)
    results = predict_images({"blank.png": img}, ValueDetector(), MeanClassifier(), whole_image_if_no_face=True)
    r = results[0]
    assert r.name == "blank.png" and r.status == "whole image" and r.faces[0].whole_image
    assert r.faces[0].box.as_tuple() == (20, 0, 60, 60)
    drawn = annotate(img, r)
    assert drawn.shape == img.shape and not np.array_equal(drawn, img) and img.max() == 0


def test_batch_prediction_on_real_photos(astronaut: np.ndarray, classifier: EmotionClassifier) -> None:
    four = np.full((480, 640, 3), 120, np.uint8)
    small = cv2.resize(astronaut, (256, 256))
    for k, (x, y) in enumerate(((40, 0), (340, 0), (40, 224), (340, 224))):
        four[y : y + 256, x : x + 256] = small if k % 2 == 0 else cv2.flip(small, 1)
    results = predict_images([astronaut, np.zeros((200, 200, 3), np.uint8), four], YuNetDetector(), classifier)
    assert [len(r.faces) for r in results] == [1, 0, 4]
    crops = [crop_face(astronaut, results[0].faces[0].box, DEFAULT_MARGIN, True)]  # the margin every path crops with
    np.testing.assert_allclose(results[0].faces[0].probabilities, classifier.predict_proba(crops)[0], atol=1e-5)
    assert results[2].faces[0].box.y < results[2].faces[2].box.y  # reading order: top row first
    assert annotate(four, results[2]).shape == four.shape


def test_predict_sources_in_chunks_keeps_order_and_errors(tmp_path, model, astronaut: np.ndarray) -> None:
    """Files and a folder through predict_sources, one photo per chunk: the same results, in input order,
    unreadable files as error results, a classifier call per chunk (memory bounded by the chunk)."""
    from fer_core.inference.batch_predict import results_table
    from fer_core.inference.classifier import EmotionClassifier
    from fer_core.inference.faces import make_detector
    from fer_core.inference.sources import path_sources, predict_sources

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    photo, blank, broken = folder / "astronaut.png", folder / "sub" / "blank.png", tmp_path / "broken.jpg"
    photo.write_bytes(cv2.imencode(".png", astronaut)[1].tobytes())
    blank.write_bytes(cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes())
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "sub" / "notes.txt").write_text("skipped")
    sources = path_sources([folder, broken, tmp_path / "missing.png"])
    assert [s.name for s in sources] == ["photos/astronaut.png", "photos/sub/blank.png", "broken.jpg", "missing.png"]
    classifier = EmotionClassifier(model, labels=FER_LABELS, input_shape=(48, 48, 1), warm_up_to=1)
    calls = []
    real = classifier.predict_proba
    classifier.predict_proba = lambda crops: calls.append(len(crops)) or real(crops)
    detector = make_detector("auto")
    one = list(predict_sources(sources, detector, classifier, chunk_size=1))
    assert [r.status for r, _ in one] == ["faces", "no face", "error", "error"]
    assert one[0][1] is not None and one[2][1] is None and "broken.jpg" in one[2][0].error
    unread = one[2][0]
    assert unread.summary().count("broken.jpg") == 1 and "corrupt" in unread.summary()  # the name once
    assert "broken.jpg" not in results_table([unread])[0]["error"]  # the CSV has it in its own column
    assert len(calls) == 1, "the one photo with a face: one call for its chunk"
    together = list(predict_sources(sources, detector, classifier, chunk_size=32))
    assert results_table([r for r, _ in together]) == results_table([r for r, _ in one])
    whole = list(predict_sources(path_sources([blank]), detector, classifier, whole_image_if_no_face=True))
    assert whole[0][0].status == "whole image"


def test_the_detector_is_the_one_place_a_frame_is_downscaled(frame640: np.ndarray, classifier: EmotionClassifier) -> None:
    seen = []

    class Recording(YuNetDetector):
        def _detect(self, frame):
            seen.append(frame.shape[1])
            return super()._detect(frame)

    pipe = FramePipeline(Recording(), classifier, detect_every=1, downscale_width=320)
    small = pipe.process(frame640)[1][0].box
    pipe.configure(downscale_width=None)  # full size
    full = pipe.process(frame640)[1][0].box
    assert seen == [320, 640]
    assert small.iou(full) > 0.8  # boxes come back in the frame's pixels either way
    pipe.configure(detector=Recording())  # a new detector gets the pipeline's width too
    assert pipe.detector.max_width is None


def test_tracker_keeps_ids_drops_lost_faces_and_smooths() -> None:
    frame = np.full((240, 320, 3), 90, np.uint8)
    a, b = Box(20, 20, 60, 60), Box(200, 40, 60, 60)
    tracker = Tracker(max_missed=1, smoothing_window=2)
    first = {t.track_id: t.box for t in tracker.step(frame, [a, b])}
    again = tracker.step(frame, [Box(24, 22, 60, 60)], follow=False)  # a moved a little; b not seen
    assert sorted(t.track_id for t in again) == sorted(first)  # b is kept for one missed round
    assert {t.track_id: t.detected for t in again} == {1: True, 2: False}
    assert [t.track_id for t in tracker.step(frame, [Box(26, 22, 60, 60)])] == [1]  # b dropped
    assert [t.track_id for t in tracker.step(frame, [b])] == [1, 3]  # a new face gets a new id; a kept for a round
    t = tracker.tracks[0]
    p, q, r = np.eye(7, dtype=np.float32)[[0, 1, 2]]
    tracker.smooth(t, p)
    assert np.allclose(tracker.smooth(t, q), (p + q) / 2)
    assert np.allclose(tracker.smooth(t, r), (q + r) / 2)  # window of 2
