"""Mixup / CutMix (--mixup, --cutmix) in both training feeds, and distillation from teacher runs (--teacher)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_core.errors import FerError
from fer_core.training.config import TrainConfig
from fer_core.training.mixing import batch_targets, check_targets, mix_batch

N = 7


def flat_faces(n: int = N) -> np.ndarray:
    """float32 (n, 48, 48, 1) images, image i a constant (i + 1) / (n + 2): a pixel tells whose it is."""
    return np.broadcast_to(((np.arange(n) + 1) / (n + 2)).astype(np.float32)[:, None, None, None],
                           (n, 48, 48, 1)).copy()


def test_mixup_blends_images_targets_and_weights_with_one_weight() -> None:
    x, t, w = flat_faces(), np.eye(N, dtype=np.float32), np.arange(1, N + 1, dtype=np.float32)
    out, mixed, mw = mix_batch(x, t, np.random.default_rng(3), mixup=0.4, weights=w)
    values = x[:, 0, 0, 0]
    assert np.allclose(mixed.sum(axis=1), 1.0) and (mixed >= 0).all()
    assert not np.allclose(mixed, t)  # something was mixed
    # each image is the blend its target says: image i = sum_k target[i, k] * image k
    assert np.allclose(out[:, 0, 0, 0], mixed @ values, atol=1e-6)
    assert np.allclose(out.reshape(N, -1).std(axis=1), 0, atol=1e-6)
    assert mw is not None and np.allclose(mw, mixed @ w, atol=1e-5)
    assert np.array_equal(x, flat_faces())  # inputs untouched
    again = mix_batch(x, t, np.random.default_rng(3), mixup=0.4, weights=w)
    assert np.array_equal(again[0], out) and np.array_equal(again[1], mixed)


def test_cutmix_pastes_a_patch_and_weighs_targets_by_its_area() -> None:
    x, t = flat_faces(), np.eye(N, dtype=np.float32)
    for seed in range(6):
        out, mixed, _ = mix_batch(x, t, np.random.default_rng(seed), cutmix=1.0)
        values = x[:, 0, 0, 0]
        for i in range(N):
            px = out[i, ..., 0]
            own = np.isclose(px, values[i]).mean()
            assert np.isclose(mixed[i, i], own, atol=1e-6) or np.isclose(mixed[i, i], 1.0)
            others = {int(np.argmin(np.abs(values - v))) for v in np.unique(px)} - {i}
            assert len(others) <= 1  # one partner, pasted as one rectangle
            if others:
                (j,) = others
                ys, xs = np.nonzero(np.isclose(px, values[j]))
                assert len(ys) == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
                assert np.isclose(mixed[i, j], 1 - own, atol=1e-6)


def test_no_mixing_when_off_or_alone_and_both_kinds_are_drawn() -> None:
    x, t = flat_faces(), np.eye(N, dtype=np.float32)
    out, mixed, w = mix_batch(x, t, np.random.default_rng(0))
    assert out is x and mixed is t and w is None
    one = mix_batch(x[:1], t[:1], np.random.default_rng(0), mixup=1.0)
    assert np.array_equal(one[0], x[:1])
    kinds = set()
    for seed in range(20):
        out, _, _ = mix_batch(x, t, np.random.default_rng(seed), mixup=1.0, cutmix=1.0)
        flat = np.allclose(out.reshape(N, -1).std(axis=1), 0, atol=1e-6)
        kinds.add("mixup" if flat else "cutmix")
    assert kinds == {"mixup", "cutmix"}


def test_soft_targets_are_checked() -> None:
    ok = np.full((3, N), 1 / N, np.float32)
    assert check_targets(ok, 3, N).dtype == np.float32
    with pytest.raises(ValueError, match="shape"):
        check_targets(ok, 4, N)
    with pytest.raises(ValueError, match="probabilities"):
        check_targets(ok * 2, 3, N)
    with pytest.raises(ValueError, match="probabilities"):
        check_targets(np.where(np.eye(3, N) > 0, np.nan, ok), 3, N)
    assert np.array_equal(batch_targets(np.array([2, 0]), N), np.eye(N, dtype=np.float32)[[2, 0]])


@pytest.mark.parametrize("feed", ["tf.data", "numpy"])
def test_both_feeds_mix_training_batches_only_and_carry_soft_targets(feed: str) -> None:
    from fer_core.training.feeding import array_batches
    from fer_core.training.pipeline import make_dataset

    make = make_dataset if feed == "tf.data" else array_batches
    n = 28
    x = (np.arange(n, dtype=np.float64)[:, None, None] * 8 + np.zeros((n, 48, 48))).astype(np.uint8)
    y = np.arange(n) % N
    soft = np.random.default_rng(0).dirichlet(np.ones(N), n).astype(np.float32)

    def first(ds: object) -> tuple[np.ndarray, ...]:
        batch = ds[0] if feed == "numpy" else next(iter(ds))  # type: ignore[index, call-overload]
        return tuple(np.asarray(b) for b in batch)

    images, targets = first(make(x, y, n, training=True, seed=1, soft_targets=soft))
    whose = np.rint(images[:, 0, 0, 0] * 255 / 8).astype(int)  # which face each row is
    assert np.allclose(targets, soft[whose], atol=1e-6)  # the soft targets travel with their faces
    images, targets = first(make(x, y, n, training=True, seed=1, mixup=0.4))
    assert not np.isclose(targets.max(axis=1), 1.0).all() and np.allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    w = np.linspace(1, 2, n).astype(np.float32)
    images, targets, weights = first(make(x, y, n, training=True, seed=1, cutmix=1.0, sample_weights=w))
    assert weights.shape == (n,) and np.allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    images, targets = first(make(x, y, n, training=False, mixup=0.4, cutmix=1.0))  # validation: never mixed
    assert np.array_equal(targets, np.eye(N, dtype=np.float32)[y]) and np.allclose(images[..., 0] * 255, x, atol=1e-3)


def test_settings_check_mixing_and_teachers() -> None:
    c = TrainConfig(mixup=0.2, cutmix=1, teachers=" a-run , other ", distill_weight=0.5)  # type: ignore[arg-type]
    assert c.teachers == ["a-run", "other"] and c.cutmix == 1.0
    assert TrainConfig(teachers="").teachers is None and TrainConfig.from_dict(c.to_dict()) == c
    for bad in ({"mixup": -0.1}, {"cutmix": True}, {"distill_weight": 1.5}, {"teachers": "a,a"},
                {"teachers": [1]}, {"teachers": ",".join(f"r{i}" for i in range(9))}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)  # type: ignore[arg-type]


def test_blend_mixes_teacher_and_label() -> None:
    from fer_core.training.distill import blend

    probs = np.full((2, N), 1 / N, np.float32)
    out = blend(probs, np.array([3, 0]), 0.7)
    assert np.allclose(out.sum(axis=1), 1) and np.isclose(out[0, 3], 0.3 + 0.7 / N) and np.isclose(out[1, 1], 0.7 / N)
    assert np.allclose(blend(probs, np.array([3, 0]), 1.0), probs)


def _copy_run(store: object, run_id: str, models_dir: Path) -> None:
    shutil.copytree(store.run_dir(run_id), models_dir / run_id)  # type: ignore[attr-defined]


def test_a_run_distils_its_teachers_probabilities(demo_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from fer_core.store.prediction import ModelRunner
    from fer_core.store.runs import ModelStore
    from fer_core.training import distill, feeding
    from fer_core.training.loop import train
    from fer_core.training.split import prepare_training_data

    teacher_store, teacher_id, ds = demo_run
    root = Path(os.environ["FER_MODELS_DIR"])
    _copy_run(teacher_store, teacher_id, root)
    store = ModelStore(root)
    config = TrainConfig(architecture="mini_xception", epochs=1, batch_size=32, max_train_images=200,
                         teachers=[teacher_id], distill_weight=0.6, mixup=0.2, precision="float32")
    seen: list[np.ndarray | None] = []
    make_feed = feeding.make_feed

    def spy(*args: object, **kwargs: object) -> object:
        if kwargs.get("training"):
            seen.append(kwargs.get("soft_targets"))  # type: ignore[arg-type]
        return make_feed(*args, **kwargs)

    monkeypatch.setattr(feeding, "make_feed", spy)
    run_id = train(ds, config, store=store)
    data = prepare_training_data(ds, config)
    teacher = ModelRunner.from_run(store, teacher_id)
    expected = distill.blend(teacher.probabilities(data.x_train, tta=True), data.y_train, 0.6)
    (soft,) = seen
    assert soft is not None and np.allclose(soft, expected, atol=1e-5)
    meta = store.read_meta(run_id)
    record = meta["teachers"]
    val_acc = float((teacher.probabilities(data.x_val, tta=True).argmax(1) == data.y_val).mean())
    assert record["runs"] == [teacher_id] and record["weight"] == 0.6
    assert abs(record["val_accuracy"] - val_acc) < 1e-3 and meta["status"] == "finished"
    # a resume computes nothing again: the targets are kept in the run's folder
    again, rec = distill.teacher_targets(store, run_id, [teacher_id], data, 0.6)
    assert rec is None and np.allclose(again, expected, atol=1e-5)


def test_an_unknown_teacher_is_refused_before_a_run_exists(demo_run) -> None:
    import os

    from fer_core.store.runs import ModelStore
    from fer_core.training.loop import train

    _, _, ds = demo_run
    store = ModelStore(Path(os.environ["FER_MODELS_DIR"]))
    with pytest.raises(FerError, match="teacher 'nobody'"):
        train(ds, TrainConfig(epochs=1, teachers=["nobody"]), store=store)
    assert store.list_runs() == []
