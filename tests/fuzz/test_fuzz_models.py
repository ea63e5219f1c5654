"""Property-based fuzzing of the model-file entry points: inspection, import, TFLite loading.

Generated hostile model files: random bytes behind an HDF5 or zip signature, real .keras/.h5
files truncated or bit-flipped, .keras archives whose config.json is generated JSON with a
Lambda layer (or a serialized lambda) hidden at a random depth, and random bytes given to the
TFLite runner. Property: the call succeeds (a flipped weight is still a model) or raises
ModelFileError with a message; a file with code in it is never accepted; a failed import
leaves nothing in the store and nothing is written outside it. Deterministic (derandomized);
case counts are reported with the rest of the fuzz suite (tests/fuzz/conftest.py).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_core.errors import ModelFileError
from fer_core.store.importing import import_model
from fer_core.store.safety import H5_MAGIC, ZIP_MAGIC, inspect_model_file
from fer_core.store.runs import ModelStore
from tests.fuzz.counts import count

pytestmark = pytest.mark.slow

SCALE = float(os.environ.get("FER_FUZZ_SCALE", "1"))


def fuzz(n: int):
    return settings(max_examples=max(1, int(n * SCALE)), derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def real_files(tmp_path_factory) -> dict[str, bytes]:
    import keras

    folder = tmp_path_factory.mktemp("fuzz-models")
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(7, activation="softmax")])
    out = {}
    for suffix in (".keras", ".h5"):
        path = folder / f"m{suffix}"
        model.save(path)
        out[suffix] = path.read_bytes()
    return out


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _try_import(tmp: Path, name: str, data: bytes) -> tuple[str, object]:
    """Write `data` as `name` in a fresh folder, import it into a store beside it; ('ok'|'refused', detail)."""
    work = tmp / f"case{count_cases.n}"
    count_cases.n += 1
    work.mkdir()
    path = work / name
    path.write_bytes(data)
    store = ModelStore(work / "store")
    before = _snapshot(work)
    try:
        run = import_model(path, labels="csv", scale="0-1", store=store)
    except ModelFileError as exc:
        assert str(exc).strip(), "a refusal must say why"
        assert [r for r in store.list_runs()] == [], "a failed import left a run behind"
        outside = {p for p in _snapshot(work) - before if not p.startswith("store")}
        assert not outside, f"written outside the store: {outside}"
        return "refused", exc
    outside = {p for p in _snapshot(work) - before if not p.startswith("store")}
    assert not outside, f"written outside the store: {outside}"
    return "ok", run


class count_cases:  # noqa: N801 - a tiny per-process counter for unique case folders
    n = 0


@fuzz(60)
@given(prefix=st.sampled_from([H5_MAGIC, ZIP_MAGIC, b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"]),
       body=st.binary(max_size=4096), suffix=st.sampled_from([".keras", ".h5", ".hdf5"]))
def test_random_bytes_are_refused_cleanly(tmp_path_factory, prefix: bytes, body: bytes, suffix: str) -> None:
    count("model import: random bytes")
    tmp = tmp_path_factory.mktemp("rand")
    outcome, detail = _try_import(tmp, f"model{suffix}", prefix + body)
    assert outcome == "refused", detail


@fuzz(60)
@given(which=st.sampled_from([".keras", ".h5"]), cut=st.floats(0.0, 0.999),
       flips=st.lists(st.tuples(st.floats(0, 0.999), st.integers(1, 255)), max_size=8))
def test_damaged_real_model_files(real_files, tmp_path_factory, which: str, cut: float, flips) -> None:
    count("model import: damaged real files")
    data = bytearray(real_files[which])
    for pos, xor in flips:
        data[int(pos * len(data))] ^= xor
    if cut > 0.5:  # about half the cases are truncated too
        data = data[: int(cut * len(data))]
    # Either outcome is fine (a flipped weight is still a model; 17 of 60 cases import), never a crash.
    _try_import(tmp_path_factory.mktemp("dmg"), f"model{which}", bytes(data))


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8))
json_tree = st.recursive(json_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                           st.dictionaries(st.text(max_size=6), kids, max_size=4)),
                         max_leaves=20)
CODE = [
    {"class_name": "Lambda", "config": {"name": "evil", "function": ["YWJj", None, None], "function_type": "lambda"}},
    {"module": "keras.layers", "class_name": "Lambda",
     "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {"code": "x"}}}},
    {"class_name": "__lambda__", "config": {"code": "print(1)"}},
    {"function_type": "lambda", "function": "x"},
]


@fuzz(60)
@given(tree=json_tree, code=st.sampled_from(CODE), depth=st.integers(0, 4), h5=st.booleans())
def test_code_hidden_anywhere_in_the_config_is_refused(tmp_path_factory, tree, code, depth: int, h5: bool) -> None:
    count("model import: hidden Lambda")
    node = code
    for i in range(depth):  # bury it
        node = {"class_name": "Functional", "config": {"layers": [tree, node]}} if i % 2 else [node, tree]
    config = {"class_name": "Sequential", "config": {"name": "m", "layers": [tree, node]}}
    tmp = tmp_path_factory.mktemp("lam")
    if h5:
        import h5py

        buf = tmp / "src.h5"
        with h5py.File(buf, "w") as f:
            f.attrs["model_config"] = json.dumps(config)
        data, name = buf.read_bytes(), "model.h5"
    else:
        mem = io.BytesIO()
        with zipfile.ZipFile(mem, "w") as zf:
            zf.writestr("config.json", json.dumps(config))
            zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        data, name = mem.getvalue(), "model.keras"
    path = tmp / name
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match="Lambda"):
        inspect_model_file(path)
    outcome, _ = _try_import(tmp, name, data)
    assert outcome == "refused"


@fuzz(40)
@given(body=st.binary(max_size=2048), ident=st.booleans())
def test_tflite_runner_refuses_random_bytes(body: bytes, ident: bool) -> None:
    from fer_core.store.export import TFLiteRunner

    count("TFLite runner: random bytes")
    data = (body[:4].ljust(4, b"\0") + b"TFL3" + body[4:]) if ident else body
    with pytest.raises(ModelFileError, match="Not a usable TFLite model"):
        TFLiteRunner(data)  # random bytes (even behind the TFL3 identifier) are never taken for a model
