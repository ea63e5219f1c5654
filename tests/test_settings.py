"""Training settings are defined once (TrainConfig's fields and their metadata): the `train` command's
options are built from them, and the Train page hands every one of them to the training."""

from __future__ import annotations

from dataclasses import fields

import pytest
from streamlit.testing.v1 import AppTest

from fer_core.cli.main import build_parser
from fer_core.training.config import TrainConfig
from tests.app_helpers import install_tiny_run
from tests.cli_helpers import ROOT

FIELDS = [f.name for f in fields(TrainConfig)]


def test_every_setting_is_a_train_option_with_its_metadata() -> None:
    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    options = {a.dest: a for a in train._actions}
    assert set(FIELDS) <= set(options), set(FIELDS) - set(options)
    for f in fields(TrainConfig):
        action = options[f.name]
        assert list(action.option_strings[: len(f.metadata["cli"])]) == list(f.metadata["cli"])
        assert action.help == f.metadata["help"] and action.default is None
        if f.metadata.get("choices"):
            assert tuple(action.choices) == tuple(f.metadata["choices"])


def test_the_train_command_passes_every_setting_on() -> None:
    from fer_core.cli.train import _train_config

    args = build_parser().parse_args([
        "train", "--arch", "vgg_compact", "--epochs", "7", "--batch-size", "16", "--lr", "0.002", "--optimizer", "sgd",
        "--no-augment", "--random-erasing", "--camera-augment", "--mixup", "0.2", "--cutmix", "1",
        "--teacher", "run-a,run-b", "--distill-weight", "0.5", "--class-weights", "--val", "0.25", "--patience", "3",
        "--reduce-lr-patience", "2", "--lr-schedule", "cosine", "--warmup-epochs", "2", "--label-smoothing", "0.1",
        "--weight-decay", "0.01", "--seed", "7", "--name", "x", "--max-train-images", "100", "--precision", "float32"])
    config = _train_config(args).to_dict()
    assert config == {"architecture": "vgg_compact", "epochs": 7, "batch_size": 16, "learning_rate": 0.002,
                      "optimizer": "sgd", "augment": False, "random_erasing": True, "camera_augment": True,
                      "mixup": 0.2, "cutmix": 1.0, "teachers": ["run-a", "run-b"], "distill_weight": 0.5,
                      "class_weights": True,
                      "validation": "0.25", "early_stopping_patience": 3, "reduce_lr_patience": 2,
                      "lr_schedule": "cosine", "warmup_epochs": 2, "label_smoothing": 0.1, "weight_decay": 0.01,
                      "seed": 7, "name": "x", "max_train_images": 100, "precision": "float32"}
    assert set(config) == set(FIELDS)


def test_the_train_page_hands_every_setting_to_the_training(tiny_store, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from fer_core.training import jobs

    run_id = install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    started: list[dict] = []
    monkeypatch.setattr(jobs, "start_training", lambda source, config, store=None: started.append(config) or "x")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180).run()
    at.switch_page("app_pages/train.py").run()
    at.selectbox(key="tr_arch").set_value("vgg_fer").run()  # a cosine recipe with warm-up and weight decay
    at.number_input(key="tr_cap").set_value(500).run()
    at.number_input(key="tr_seed").set_value(99).run()
    at.multiselect(key="tr_teachers").set_value([run_id]).run()  # distil from the tiny run
    at.number_input(key="tr_mixup").set_value(0.2).run()
    at.button(key="tr_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (config,) = started
    assert set(config) == set(FIELDS), set(FIELDS) ^ set(config)
    assert config["seed"] == 99 and config["max_train_images"] == 500 and config["warmup_epochs"] == 3
    assert config["teachers"] == [run_id] and config["mixup"] == 0.2 and config["distill_weight"] == 0.7
    TrainConfig.from_dict(config)  # a valid configuration
