"""The app's UI-independent helpers in fer_core: colours, charts, dataset stats, WebRTC config."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_core import charts
from fer_core.data import stats as stats
from fer_core.colors import EMOTION_HEX, emotion_bgr, emotion_hex, emotion_rgb
from fer_core.errors import FerError
from fer_core.labels import FER_LABELS
from fer_core.inference.webrtc import parse_rtc_configuration, rtc_configuration


def test_every_emotion_has_a_distinct_colour_and_aliases_map():
    assert set(EMOTION_HEX) == set(FER_LABELS)
    assert len(set(EMOTION_HEX.values())) == len(FER_LABELS)
    assert emotion_hex("Happiness") == EMOTION_HEX["happy"]
    r, g, b = emotion_rgb("sad")
    assert emotion_bgr("sad") == (b, g, r)
    assert emotion_hex("unknown-class").startswith("#")


def test_class_counts_and_imbalance():
    labels = np.array([0, 0, 0, 3, 3, 6])
    counts = stats.class_counts(labels)
    assert counts == {"angry": 3, "disgust": 0, "fear": 0, "happy": 2, "sad": 0, "surprise": 0, "neutral": 1}
    assert stats.imbalance_ratio(counts) == 3.0
    assert stats.missing_classes(counts) == ["disgust", "fear", "sad", "surprise"]
    assert stats.imbalance_ratio({k: 0 for k in FER_LABELS}) is None


def test_samples_mean_faces_histogram_montage():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 48, 48), dtype=np.uint8)
    labels = np.arange(40) % 7
    picks = stats.sample_indices(labels, 3, seed=1)
    assert all(len(v) <= 3 and np.all(labels[v] == c) for c, v in picks.items())
    assert stats.sample_indices(labels, 3, seed=1)[0].tolist() == picks[0].tolist()  # reproducible
    means = stats.mean_faces(images, labels)
    assert means[0].shape == (48, 48) and means[0].dtype == np.uint8
    np.testing.assert_allclose(means[0], np.rint(images[labels == 0].mean(axis=0)), atol=1)
    assert stats.mean_faces(images[:0], labels[:0])[0] is None
    edges, frac = stats.pixel_histogram(images, bins=64)
    assert len(edges) == 64 and abs(frac.sum() - 1) < 1e-9
    tile = stats.montage([images[0], images[1], images[2]], cols=2, pad=2)
    assert tile.shape == (98, 98)


def test_report_rows_from_dict():
    rep = {
        "counts": {"train": {"happy": 2}, "test": {"happy": 1}},
        "skipped": [{"item": "a.png", "reason": "corrupt image"}],
        "skipped_by_reason": {"corrupt image": 1, "unknown class folder": 4},
        "blank": {"train": [1]},
        "duplicates_within": {"train": [[0, 1], [2, 3, 4]]},
        "duplicates_across": [{"split_a": "train", "index_a": 0, "split_b": "test", "index_b": 0}],
    }
    rows = stats.report_rows(rep)
    assert rows["totals"] == {"train": 2, "test": 1}
    assert rows["skipped_by_reason"][0] == ("unknown class folder", 4)
    assert rows["duplicates_within"] == [("train", 2, 5)]
    assert rows["duplicates_across"] == [("train", "test", 1)]


def test_figures_build_and_carry_selection_data():
    cm = np.arange(49).reshape(7, 7)
    fig = charts.confusion_matrix_figure(cm, FER_LABELS, normalize=True)
    cells = fig.data[1]
    assert len(cells.customdata) == 49 and list(cells.customdata[8]) == [1, 1, 8]
    assert fig.data[0].z.max() <= 1.0
    hist = [{"epoch": 1, "loss": 2.0, "accuracy": 0.2, "val_loss": 2.1, "val_accuracy": 0.15, "lr": 1e-3},
            {"epoch": 2, "loss": 1.5, "accuracy": 0.4, "val_loss": None, "val_accuracy": float("nan"), "lr": 5e-4}]
    fig = charts.history_figure(hist, total_epochs=10)
    names = [t.name for t in fig.data]
    assert names.count("train") == 2 and "learning rate" in names
    assert charts.probability_figure(np.full(7, 1 / 7), FER_LABELS).data[0].orientation == "h"
    roc = {"happy": {"fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1], "auc": 0.8}, "sad": {"fpr": [], "tpr": [], "auc": None}}
    assert len(charts.roc_figure(roc).data) == 2  # chance line + happy
    assert charts.class_distribution_figure({"train": {"happy": 3, "sad": 1}}).data[0].y == (3, 1)


def test_rtc_configuration_sources(tmp_path):
    assert rtc_configuration(None, {}) == ({"iceServers": []}, "default")
    env = {"FER_RTC_CONFIGURATION": '{"iceServers": [{"urls": "stun:stun.example.org:3478"}]}'}
    cfg, origin = rtc_configuration({"rtc_configuration": {"iceServers": []}}, env)
    assert origin == "env" and cfg["iceServers"][0]["urls"].startswith("stun:")
    cfg, origin = rtc_configuration({"rtc_configuration": {"iceServers": [{"urls": ["turn:t.example.org"]}]}}, {})
    assert origin == "secrets" and cfg["iceServers"][0]["urls"] == ["turn:t.example.org"]
    path = tmp_path / "rtc.json"
    path.write_text(json.dumps({"iceServers": []}))
    assert parse_rtc_configuration(str(path)) == {"iceServers": []}
    for bad in ("{nope", "[1, 2]", '{"iceServers": {}}', '{"iceServers": [{"url": "x"}]}', str(tmp_path / "missing.json")):
        with pytest.raises(FerError):
            parse_rtc_configuration(bad)

    class Secrets:  # st.secrets raises when there is no secrets.toml
        def get(self, key):
            raise FileNotFoundError("no secrets")

    assert rtc_configuration(Secrets(), {})[1] == "default"


@pytest.mark.slow
def test_grad_cam_map_for_a_small_model():
    from fer_core.training.architectures import build_model
    from fer_core.inference.saliency import GradCam, last_conv_layer, overlay

    model = build_model("mini_xception")
    layer = last_conv_layer(model)
    assert min(layer.output.shape[1], layer.output.shape[2]) >= 6
    cam = GradCam(model)(np.random.default_rng(0).random((48, 48, 1), dtype=np.float32), class_index=3)
    assert cam.shape == (48, 48) and cam.dtype == np.float32 and 0 <= cam.min() and cam.max() <= 1
    assert overlay(np.zeros((48, 48), np.uint8), cam).shape == (144, 144, 3)


@pytest.mark.slow
def test_grad_cam_finds_the_region_that_drives_the_class():
    """A model whose class-3 score is the mean of a 1x1 convolution of the image: on an image bright only
    in one square, the map for class 3 must light that square and leave the rest dark (an all-zero or
    uniform map fails)."""
    import keras

    from fer_core.inference.saliency import GradCam

    inp = keras.Input((48, 48, 1))
    conv = keras.layers.Conv2D(1, 1, use_bias=False, name="conv", kernel_initializer="ones")(inp)
    dense = keras.layers.Dense(7, kernel_initializer="zeros", bias_initializer="zeros")
    out = keras.layers.Softmax()(dense(keras.layers.GlobalAveragePooling2D()(conv)))
    model = keras.Model(inp, out)
    kernel = np.zeros((1, 7), np.float32)
    kernel[0, 3] = 5.0
    dense.set_weights([kernel, np.zeros(7, np.float32)])
    x = np.zeros((48, 48, 1), np.float32)
    x[30:42, 6:18] = 1.0  # the planted region
    cam = GradCam(model, "conv")(x, class_index=3)
    assert cam[32:40, 8:16].min() > 0.8, cam[32:40, 8:16]
    outside = np.ones((48, 48), bool)
    outside[26:46, 2:22] = False  # the region and a margin the resize may blur into
    assert cam[outside].max() < 0.1
    assert int(np.argmax(model(x[None]).numpy()[0])) == 3


def test_model_picker_labels_say_each_fact_once(tmp_path):
    from fer_core.store.layout import RunInfo
    from ui.runs import run_label

    shipped = RunInfo("vgg_fer-fer2013", tmp_path, "stopped", {
        "name": "vgg_fer on FER-2013 (shipped)", "architecture": "vgg_fer", "shipped": {"default": True},
        "metrics": {"test_accuracy": 0.693}})
    label = run_label(shipped)
    assert label.count("vgg_fer") == 1 and label.lower().count("shipped") == 1 and "69.3%" in label, label
    assert "stopped" not in label  # a shipped model's training story is not its name
    mine = RunInfo("20261206-1", tmp_path, "finished", {
        "name": "baseline", "architecture": "mini_xception", "metrics": {"val_accuracy": 0.612},
        "dataset": {"synthetic": True}})
    assert run_label(mine) == "baseline — mini_xception · 61.2% (synthetic data) [finished]"


def test_badges_say_uncertain_below_the_users_confidence():
    from ui.predict_view import badge

    assert ">happy 87%<" in badge("happy", 0.87, 0.5)
    low = badge("happy", 0.38, 0.5)
    assert "uncertain: happy? 38%" in low and "#969696" in low
    assert ">happy 38%<" in badge("happy", 0.38)  # off by default
