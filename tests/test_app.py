"""The Streamlit app under streamlit.testing.v1.AppTest: every page renders on the demo data,
uploads work, a short training shows its epochs, a finished run can be evaluated.

The webrtc component cannot run under AppTest: tests replace ui.webcam.webrtc_stream.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from tests.app_helpers import (
    APP,
    APP_TIMEOUT,
    assert_clean,
    astronaut_bgr,
    coffee_bgr,
    install_tiny_run,
    jpeg_bytes,
    new_app,
    open_page,
    png_bytes,
    texts,
    tiny_zip,
    webp_bytes,
)

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["app_pages/home.py", "app_pages/dataset.py", "app_pages/train.py", "app_pages/evaluate.py", "app_pages/predict.py", "app_pages/webcam.py", "app_pages/video.py", "app_pages/batch.py", "app_pages/models.py"]
TIMEOUT = APP_TIMEOUT


@pytest.fixture
def fake_webrtc(monkeypatch):
    """Replace the webrtc_streamer call (AppTest cannot run the component)."""
    import ui.webcam

    calls = []

    def fake(**kwargs):
        calls.append(kwargs)
        return SimpleNamespace(state=SimpleNamespace(playing=False, signalling=False))

    monkeypatch.setattr(ui.webcam, "webrtc_stream", fake)
    return calls


def test_home_renders_without_tensorflow():
    """The first page must not import TensorFlow (checked in a fresh interpreter)."""
    code = (
        "import sys; from streamlit.testing.v1 import AppTest;"
        f"at = AppTest.from_file({APP!r}, default_timeout=60).run();"
        "assert not at.exception, [e.value for e in at.exception];"
        "print('TF' if 'tensorflow' in sys.modules else 'NO-TF')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "NO-TF"


def test_every_page_renders_on_demo_without_models(fake_webrtc):
    at = new_app()
    assert_clean(at)
    assert "demo" in texts(at)
    assert at.button(key="home_quick_train")  # no model yet: one-click training offered
    for page in PAGES[1:]:
        open_page(at, page)
        assert_clean(at)
        assert not at.error, (page, [e.value for e in at.error])
    # the dataset page labels the demo set synthetic
    open_page(at, "app_pages/dataset.py")
    assert "synthetic" in texts(at).lower()


def test_every_page_renders_with_a_trained_model(tiny_store, fake_webrtc):
    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    at = new_app()
    assert_clean(at)
    assert "tiny test model" in texts(at)
    for page in PAGES[1:]:
        open_page(at, page)
        assert_clean(at)
        assert not at.error, (page, [e.value for e in at.error])
    assert fake_webrtc and fake_webrtc[-1]["rtc_configuration"] == {"iceServers": []}


def test_dataset_upload_zip_and_report():
    at = new_app()
    open_page(at, "app_pages/dataset.py")
    at.segmented_control(key="ds_choice").set_value("Upload a zip or CSV").run()
    assert_clean(at)
    at.file_uploader(key="ds_upload").upload("tiny.zip", tiny_zip(), "application/zip").run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["dataset_label"] == "tiny.zip"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["train images"] == "21" and metrics["test images"] == "21"
    assert metrics["skipped"] == "2"
    # the other pages now work on it
    open_page(at, "app_pages/train.py")
    assert_clean(at)
    assert "tiny" in texts(at)


def test_chosen_dataset_deleted_from_disk_falls_back_to_demo(tiny_store, tmp_path):
    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    data = tmp_path / "mine.zip"
    data.write_bytes(tiny_zip(with_junk=False))
    at = new_app()
    open_page(at, "app_pages/dataset.py")
    at.segmented_control(key="ds_choice").set_value("Path on this machine").run()
    at.text_input[0].set_value(str(data))
    next(b for b in at.button if b.label == "Load").click().run()
    assert_clean(at)
    assert at.session_state["dataset_source"] == str(data)
    data.unlink()
    for page in ("app_pages/train.py", "app_pages/evaluate.py"):
        open_page(at, page)
        assert_clean(at)
        assert any("cannot be loaded" in e.value for e in at.error), page
        at.session_state["dataset_source"] = str(data)  # the next page finds it gone too
    open_page(at, "app_pages/dataset.py")
    assert_clean(at)
    assert any("cannot be loaded" in e.value for e in at.error)


def test_dataset_bad_inputs_are_reported_not_raised(tmp_path):
    at = new_app()
    open_page(at, "app_pages/dataset.py")
    at.segmented_control(key="ds_choice").set_value("Upload a zip or CSV").run()
    at.file_uploader(key="ds_upload").upload("junk.zip", b"this is not a zip", "application/zip").run()
    assert_clean(at)
    assert at.error, "a broken zip must give an st.error"
    assert "dataset_source" not in at.session_state or at.session_state["dataset_source"] == "demo"
    at.segmented_control(key="ds_choice").set_value("Path on this machine").run()
    load = next(b for b in at.button if b.label == "Load")
    at.text_input[0].set_value(str(tmp_path / "nowhere"))
    load.click().run()
    assert_clean(at)
    assert any("does not exist" in e.value for e in at.error)
    # an existing file that is no dataset
    junk = tmp_path / "notes.csv"
    junk.write_text("a,b\n1,2\n")
    at.text_input[0].set_value(str(junk))
    next(b for b in at.button if b.label == "Load").click().run()
    assert_clean(at)
    assert any("Could not load" in e.value for e in at.error)
    assert "dataset_source" not in at.session_state or at.session_state["dataset_source"] == "demo"


def test_predict_upload_photo_and_tiny_image(tiny_store):
    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    at = new_app()
    open_page(at, "app_pages/predict.py")
    assert_clean(at)
    up = at.file_uploader(key="pred_upload")
    up.upload("astronaut.jpg", jpeg_bytes(astronaut_bgr()), "image/jpeg")
    up.upload("coffee.png", png_bytes(coffee_bgr()), "image/png")  # no face in it
    up.upload("tiny.webp", webp_bytes(astronaut_bgr()[60:180, 170:275]), "image/webp")  # a tight face crop
    at.run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    head = texts(at)
    assert "**2 faces** found in 3 images" in head and "no face in 1" in head
    assert any("No face found" in w.value for w in at.warning)
    assert len(at.image) >= 3, "annotated images and face crops are shown"
    assert at.get("download_button") or at.download_button, "results downloadable as CSV"
    at.toggle(key="pred_whole").set_value(True).run()  # classify the faceless image as a whole
    assert_clean(at)
    assert "1 classified as a whole image" in texts(at)
    at.toggle(key="pred_gradcam").set_value(True).run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    # a broken file is an error message, not a traceback
    up = at.file_uploader(key="pred_upload")
    up.upload("broken.jpg", b"definitely not a jpeg", "image/jpeg")
    at.run()
    assert_clean(at)
    assert any("broken.jpg" in e.value for e in at.error)
    assert all(e.value.count("broken.jpg") == 1 for e in at.error), [e.value for e in at.error]  # the name once


def test_predict_example_photos_run_the_whole_pipeline(tiny_store):
    """A newcomer with no photo at hand picks an example: detection, labels, the no-face case."""
    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    at = new_app()
    open_page(at, "app_pages/predict.py")
    assert_clean(at)
    pills = at.get("button_group")[0]
    assert pills.options and len(pills.options) == 4
    at.get("button_group")[0].set_value("two_people.jpg").run()
    assert_clean(at)
    assert "**2 faces** found in 1 image" in texts(at)
    at.get("button_group")[0].set_value("cat_no_face.jpg").run()
    assert_clean(at)
    assert any("No face found" in w.value for w in at.warning)
    at.file_uploader(key="pred_upload").upload("astronaut.jpg", jpeg_bytes(astronaut_bgr()), "image/jpeg")
    at.run()
    assert_clean(at)
    assert not at.get("button_group"), "an upload replaces the examples"
    assert "**1 face** found in 1 image" in texts(at)


def test_predict_a_zip_of_photos_gives_a_table_counts_and_csv(tiny_store):
    import io
    import zipfile

    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("trip/astronaut.jpg", jpeg_bytes(astronaut_bgr()))
        zf.writestr("trip/coffee.png", png_bytes(coffee_bgr()))
        zf.writestr("trip/readme.txt", "not a photo: skipped")
        zf.writestr("trip/broken.jpg", b"not a jpeg")
    at = new_app()
    open_page(at, "app_pages/predict.py")
    at.file_uploader(key="pred_upload").upload("trip.zip", buf.getvalue(), "application/zip")
    at.run()
    assert_clean(at)
    head = texts(at)
    assert "**1 face** found in 3 images" in head and "no face in 1" in head and "1 unreadable" in head, head
    table = next(d.value for d in at.dataframe)
    assert list(table["file"]) == ["trip/astronaut.jpg", "trip/broken.jpg", "trip/coffee.png"]
    assert list(table["status"]) == ["faces", "error", "no face"]
    assert any("trip/broken.jpg" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) >= 2, "a count per emotion and the face's probabilities"
    # a zip that is not one is a message, not a traceback
    at.file_uploader(key="pred_upload").upload("fake.zip", b"PK not really", "application/zip")
    at.run()
    assert_clean(at)
    assert any("fake.zip" in e.value and "not a readable zip" in e.value for e in at.error)


def test_evaluating_the_shipped_model_keeps_its_fer2013_evaluation_selectable():
    import shutil

    from fer_core.store.default_model import default_run
    from fer_core.store.runs import ModelStore

    shipped = default_run(ModelStore(ROOT / "models"))
    models = Path(os.environ["FER_MODELS_DIR"])
    shutil.copytree(shipped.path, models / shipped.run_id, ignore=shutil.ignore_patterns(".*"))
    before = {p.name: p.read_bytes() for p in (models / shipped.run_id).iterdir()}
    fer = json.loads((models / shipped.run_id / "evaluation_test.json").read_text())
    at = new_app()
    open_page(at, "app_pages/evaluate.py")  # the demo set is the chosen dataset
    assert_clean(at)
    assert any("No evaluation of this run on" in i.value for i in at.info)
    at.button(key=f"eval_{shipped.run_id}").click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    assert "synthetic" in texts(at)
    demo_acc = {m.label: m.value for m in at.metric}["accuracy"]
    pick = next(sb for sb in at.selectbox if sb.label == "Saved evaluation")
    fer_slug = next(o for o in pick.options if "fer2013.zip" in o)
    pick.set_value(next(k for k in ModelStore().list_evaluations(shipped.run_id)
                        if k.dataset_name == "fer2013.zip").key.slug).run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["accuracy"] == f"{fer['accuracy']:.1%}" != demo_acc
    assert any("not the chosen dataset" in w.value for w in at.warning)
    assert fer_slug and {p.name: p.read_bytes() for p in (models / shipped.run_id).iterdir()} == before


def test_train_page_quotes_the_shipped_models_measured_figures():
    """Architecture descriptions hold no hand-written accuracy or speed: the figure shown for vgg_fer is
    the shipped model's saved PublicTest evaluation."""
    import re
    import shutil

    from fer_core.training.architectures import ARCHITECTURES

    assert not [n for n, spec in ARCHITECTURES.items() if re.search(r"\d%|images/s", spec.description)]
    models = Path(os.environ["FER_MODELS_DIR"])
    shutil.copytree(ROOT / "models" / "vgg_fer-fer2013", models / "vgg_fer-fer2013", ignore=shutil.ignore_patterns(".*"))
    fer = json.loads((models / "vgg_fer-fer2013" / "evaluation_test.json").read_text())
    at = new_app()
    open_page(at, "app_pages/train.py")
    at.selectbox(key="tr_arch").set_value("vgg_fer").run()
    assert_clean(at)
    quoted = [c.value for c in at.caption if "Shipped `vgg_fer-fer2013`" in c.value]
    assert quoted and f"{fer['accuracy']:.1%} on fer2013.zip test (3,589 images)" in quoted[0], quoted


def test_train_short_run_shows_epochs_then_finishes():
    at = new_app()
    open_page(at, "app_pages/train.py")
    assert_clean(at)
    at.number_input(key="tr_epochs").set_value(2)
    at.number_input(key="tr_cap").set_value(400)
    at.number_input(key="tr_pat").set_value(0)
    at.selectbox(key="tr_sched").set_value("cosine")
    at.button(key="tr_start").click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    seen_epoch, finished = False, False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(2)
        at.run()  # fragments do not tick under AppTest: rerun the page
        assert_clean(at)
        progress = " ".join(str(p.proto.text) for p in at.get("progress"))
        if "Epoch 1 of 2" in progress or "Epoch 2 of 2" in progress:
            seen_epoch = True
        if any("finished" in str(m.value) for m in at.markdown) and at.button(key="goto_eval"):
            finished = True
            break
    assert seen_epoch, "per-epoch progress was never shown"
    assert finished, "the run never finished"
    runs = [p for p in Path(os.environ["FER_MODELS_DIR"]).iterdir() if p.is_dir() and not p.name.startswith(".")]
    meta = json.loads((runs[0] / "meta.json").read_text())
    assert meta["status"] == "finished" and len(meta["history"]) == 2
    assert meta["params"]["lr_schedule"] == "cosine"
    lr = meta["params"]["learning_rate"]
    assert [e["lr"] for e in meta["history"]] == pytest.approx([lr, lr / 100], rel=1e-4)


def test_train_page_opens_on_the_recommended_recipe_of_vgg_compact():
    """The default recipe is vgg_compact's (cosine, label smoothing, random erasing, 10 epochs on the demo
    set); choosing another architecture loads its own recipe into every field."""
    at = new_app()
    open_page(at, "app_pages/train.py")
    assert_clean(at)
    assert at.selectbox(key="tr_arch").value == "vgg_compact"
    assert (at.selectbox(key="tr_sched").value, at.number_input(key="tr_ls").value, at.toggle(key="tr_erase").value) \
        == ("cosine", 0.1, True)
    assert at.number_input(key="tr_epochs").value == 10  # capped on the synthetic demo set
    assert at.slider(key="tr_valfrac").value == 0.1
    at.selectbox(key="tr_arch").set_value("mini_xception").run()
    assert_clean(at)
    assert (at.selectbox(key="tr_sched").value, at.number_input(key="tr_ls").value, at.toggle(key="tr_erase").value) \
        == ("plateau", 0.0, False)
    assert (at.selectbox(key="tr_batch").value, at.selectbox(key="tr_opt").value) == (64, "adam")
    at.selectbox(key="tr_arch").set_value("vgg_fer").run()  # the shipped default's recipe
    assert_clean(at)
    assert (at.selectbox(key="tr_opt").value, at.selectbox(key="tr_sched").value, at.selectbox(key="tr_batch").value) \
        == ("adamw", "cosine", 128)


def _wait_page(at: AppTest, until, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)
        at.run()  # fragments do not tick under AppTest: rerun the page
        assert_clean(at)


def test_train_page_precision_stop_then_resume_to_the_planned_epochs():
    """Precision chosen on the page reaches the run; a stopped run gets a Resume button that continues
    it from its last complete epoch to the planned number of epochs, one history without gaps."""
    at = new_app()
    open_page(at, "app_pages/train.py")
    assert_clean(at)
    assert at.selectbox(key="tr_precision").options == ["float32", "bf16"]
    at.selectbox(key="tr_precision").set_value("float32")
    at.number_input(key="tr_epochs").set_value(12)
    at.number_input(key="tr_cap").set_value(400)
    at.number_input(key="tr_pat").set_value(0)
    at.button(key="tr_start").click().run()
    assert_clean(at)
    run_id = at.session_state["train_last_run"]
    models = Path(os.environ["FER_MODELS_DIR"])
    events = models / run_id / "events.jsonl"

    def epochs_done() -> int:
        return sum('"event": "epoch"' in ln for ln in events.read_text().splitlines()) if events.exists() else 0

    _wait_page(at, lambda: epochs_done() >= 2, "two epochs")
    at.button(key=f"stop_{run_id}").click().run()
    _wait_page(at, lambda: json.loads((models / run_id / "meta.json").read_text())["status"] == "stopped", "the stop")
    at.run()  # the wait may have seen "stopped" just after the last redraw: draw the Resume button
    assert_clean(at)
    stopped_at = len(json.loads((models / run_id / "meta.json").read_text())["history"])
    assert 2 <= stopped_at < 12
    resume = at.button(key=f"resume_{run_id}")
    assert not resume.disabled, resume.help
    resume.click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    _wait_page(at, lambda: json.loads((models / run_id / "meta.json").read_text())["status"] == "finished", "the resumed run")
    meta = json.loads((models / run_id / "meta.json").read_text())
    assert [e["epoch"] for e in meta["history"]] == list(range(1, 13))
    assert meta["params"]["precision"] == "float32" and meta["resumed"]
    at.run()  # the wait may have seen "finished" just after the page's last redraw
    assert_clean(at)
    assert "Epoch 12 of 12" in " ".join(str(p.proto.text) for p in at.get("progress"))
    assert f"resume_{run_id}" not in [b.key for b in at.button]  # a finished run offers no Resume


def test_evaluate_finished_run_and_open_confusion_cell(tiny_store):
    run_id = install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    at = new_app()
    open_page(at, "app_pages/evaluate.py")
    assert_clean(at)
    at.button(key=f"eval_{run_id}").click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert "accuracy" in metrics and metrics["accuracy"].endswith("%")
    # pick a cell with the selectbox fallback: true happy, predicted happy
    at.selectbox(key=f"cm_true_{run_id}").set_value("happy")
    at.selectbox(key=f"cm_pred_{run_id}").set_value("happy").run()
    assert_clean(at)
    assert "true **happy**, predicted **happy**" in texts(at)
    at.toggle(key="cm_norm").set_value(True).run()
    assert_clean(at)


def test_evaluate_compares_two_runs_side_by_side(tiny_store):
    """The session's tiny run beside a different model (the shipped mini-Xception): both evaluated on the
    demo set, the comparison table holds each one's figures and their difference."""
    import shutil

    models = Path(os.environ["FER_MODELS_DIR"])
    run_a = install_tiny_run(tiny_store, models)
    run_b = "mini_xception-fer2013"
    shutil.copytree(ROOT / "models" / run_b, models / run_b, ignore=shutil.ignore_patterns(".*"))
    name_b = json.loads((models / run_b / "meta.json").read_text())["name"]
    at = new_app()
    open_page(at, "app_pages/evaluate.py")
    at.multiselect(key="eval_runs").set_value([run_a, run_b]).run()
    assert_clean(at)
    for rid in (run_a, run_b):
        at.button(key=f"eval_{rid}").click().run()
        assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    assert "Comparison" in texts(at)
    table = at.dataframe[0].value
    assert list(table.columns[1:3]) == ["tiny test model", name_b]
    from fer_core.store.runs import ModelStore

    store = ModelStore(models)
    accuracy = [store.find_evaluation(rid, "test").accuracy for rid in (run_a, run_b)]
    assert list(table.iloc[0, 1:3]) == pytest.approx(accuracy)
    assert table.iloc[0, 3] == pytest.approx(accuracy[1] - accuracy[0]) and accuracy[0] != accuracy[1]


def test_quick_demo_training_from_home_lands_on_train_page():
    at = new_app()
    at.button(key="home_quick_train").click().run()
    assert_clean(at)
    assert not at.error, [e.value for e in at.error]
    assert "Training now" in texts(at)
    from fer_core.training import jobs
    from fer_core.store.runs import ModelStore

    store = ModelStore()
    run = jobs.running_job(store)
    assert run is not None and run.meta["params"]["epochs"] >= 1
    # a second training is refused while this one runs
    assert at.button(key="tr_start").disabled
    at.button(key=f"stop_{run.run_id}").click().run()
    assert_clean(at)
    snap = jobs.wait(store, run.run_id, timeout_s=240)
    assert snap.status in ("stopped", "finished"), (snap.status, snap.error)


def test_corrupt_and_deleted_runs_are_reported(tiny_store, fake_webrtc):
    models = Path(os.environ["FER_MODELS_DIR"])
    install_tiny_run(tiny_store, models)
    bad = models / "broken-run"
    bad.mkdir()
    (bad / "meta.json").write_text("{not json")
    at = new_app()
    assert_clean(at)
    assert any("cannot be read" in e.label for e in at.expander)
    open_page(at, "app_pages/evaluate.py")
    assert_clean(at)
    # the run vanishes between two reruns
    import shutil

    shutil.rmtree(models / "tiny-demo-run")
    at.run()
    assert_clean(at)


def test_webcam_snapshot_mode(tiny_store, fake_webrtc):
    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    at = new_app()
    open_page(at, "app_pages/webcam.py")
    assert_clean(at)
    assert fake_webrtc, "the page asked for a webrtc stream"
    at.segmented_control(key="cam_mode").set_value("Snapshot").run()
    at.camera_input[0].upload("snap.jpg", jpeg_bytes(astronaut_bgr()[0:240, 62:382])).run()
    assert_clean(at)
    assert "1 face" in texts(at)


def test_rtc_configuration_from_env(tiny_store, fake_webrtc, monkeypatch):
    monkeypatch.setenv("FER_RTC_CONFIGURATION", '{"iceServers": [{"urls": "stun:stun.example.org:3478"}]}')
    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    at = new_app()
    open_page(at, "app_pages/webcam.py")
    assert_clean(at)
    assert fake_webrtc[-1]["rtc_configuration"]["iceServers"][0]["urls"] == "stun:stun.example.org:3478"
    monkeypatch.setenv("FER_RTC_CONFIGURATION", "{broken")
    at.run()
    assert_clean(at)
    assert any("FER_RTC_CONFIGURATION" in e.value for e in at.error)
