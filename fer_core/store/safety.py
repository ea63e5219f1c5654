"""Look inside a model file before anything deserializes it: format, size, code, archive limits.

A Keras model file can carry Python code. A legacy HDF5 (`.h5`) file stores a Lambda
layer's function as marshalled bytecode in its `model_config` attribute, and loading it
runs that code; a Keras 3 `.keras` archive stores a lambda's source. This module reads the
JSON model config as plain data (h5py attributes, or `config.json` inside the zip) and
refuses any file that contains a Lambda layer, before Keras sees it. Loading then still
uses `safe_mode=True` as a second line of defence (fer_core.store.load_model_file).

It also sniffs the real format from the file's first bytes (a `.h5` renamed `.keras` still
loads; a JPEG renamed `.h5` gets a clear "not a model" message), enforces a size limit, and
applies the zip-bomb limits of fer_core.data.safezip to `.keras` archives.
Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_core import settings
from fer_core.errors import ModelFileError, UnsafeArchiveError

H5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")

MiB = 1024 * 1024
def max_model_bytes() -> int:
    """The largest model file accepted (FER_MAX_MODEL_MB, default 256 MB; the shipped models are ~1-20 MB)."""
    return int(settings.max_model_mb() * MiB)


# Layers whose config holds code that runs when the model is loaded.
CODE_LAYERS = frozenset({"Lambda"})
# Keras 3 serializes a lambda function as {"class_name": "__lambda__", "config": {"code": ...}}.
CODE_OBJECTS = frozenset({"__lambda__"})


@dataclass(frozen=True)
class ModelFileFacts:
    """What can be read from a model file without deserializing it."""

    format: str  # "keras" (zip archive) | "h5" (legacy HDF5)
    size_bytes: int
    keras_version: str | None
    class_name: str | None  # top-level model class ("Functional", "Sequential", "Model", ...)
    layer_classes: tuple[str, ...]  # every layer class named in the config, in order met


def sniff_format(path: Path) -> str | None:
    """'h5' or 'keras' from the file's first bytes, None when it is neither."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(H5_MAGIC):
        return "h5"
    if head.startswith(ZIP_MAGIC):
        return "keras"
    return None


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a JSON structure (depth first)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def code_layers(config: Any) -> list[str]:
    """Names of the layers in a model config that carry Python code (Lambda layers, lambdas)."""
    found = []
    for d in _walk(config):
        cls = d.get("class_name")
        if cls in CODE_LAYERS or cls in CODE_OBJECTS or d.get("function_type") == "lambda":
            cfg = d.get("config") if isinstance(d.get("config"), dict) else {}
            found.append(str(cfg.get("name") or d.get("name") or cls or "lambda"))
    return found


def layer_classes(config: Any) -> tuple[str, ...]:
    out = []
    for d in _walk(config):
        cls = d.get("class_name")
        if isinstance(cls, str) and isinstance(d.get("config"), dict):
            out.append(cls)
    return tuple(out)


def _decode_attr(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _h5_config(path: Path, name: str) -> tuple[Any, str | None]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = _decode_attr(f.attrs.get("model_config"))
            version = _decode_attr(f.attrs.get("keras_version"))
            has_weights = "model_weights" in f or "layer_names" in f.attrs or "layers" in f
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError / ValueError / KeyError variants
        raise ModelFileError(f"{name} is not a readable HDF5 model file ({type(exc).__name__}).") from None
    if raw is None:
        if has_weights:
            raise ModelFileError(
                f"{name} holds only weights (saved with save_weights), not a whole model. "
                "Save it with model.save(...) so the file also holds the architecture."
            )
        raise ModelFileError(f"{name} is an HDF5 file but holds no Keras model (no model_config).")
    try:
        config = json.loads(raw)
    except ValueError:
        raise ModelFileError(f"{name} has a damaged model configuration (not valid JSON).") from None
    return config, version


def _keras_config(path: Path, name: str) -> tuple[Any, str | None]:
    from fer_core.data import ZipLimits, check_zip

    limit = max_model_bytes()
    # A model archive holds a few members; weights compress poorly, so a high ratio is a bomb.
    limits = ZipLimits(max_members=64, max_total_size=4 * limit, max_member_size=4 * limit, max_ratio=50.0)
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                check_zip(zf, limits)
            except UnsafeArchiveError as exc:
                raise ModelFileError(f"{name} was refused: {exc}") from None
            names = set(zf.namelist())
            if "config.json" not in names:
                raise ModelFileError(
                    f"{name} is a zip file but not a Keras model archive (no config.json inside)."
                )
            config = json.loads(zf.read("config.json").decode("utf-8"))
            version = None
            if "metadata.json" in names:
                try:
                    version = json.loads(zf.read("metadata.json").decode("utf-8")).get("keras_version")
                except (ValueError, AttributeError):
                    version = None
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, UnicodeDecodeError, OSError, EOFError, NotImplementedError) as exc:
        raise ModelFileError(f"{name} is a damaged .keras archive ({type(exc).__name__}).") from None
    return config, (str(version) if version else None)


def inspect_model_file(path: Path | str, display_name: str | None = None) -> ModelFileFacts:
    """Check a model file without deserializing it; ModelFileError with a clear reason if refused.

    Refused: a missing or empty file, a file over the size limit, a file that is neither HDF5
    nor a zip archive, a zip that is not a Keras archive or breaks the archive limits, an
    HDF5 file without a model config (weights only), and any model with a Lambda layer.
    """
    path = Path(path)
    name = display_name or path.name
    try:
        size = path.stat().st_size
    except OSError:
        raise ModelFileError(f"Model file {name} does not exist.") from None
    if not path.is_file():
        raise ModelFileError(f"{name} is not a file.")
    if size == 0:
        raise ModelFileError(f"{name} is empty.")
    limit = max_model_bytes()
    if size > limit:
        raise ModelFileError(
            f"{name} is {size / MiB:,.1f} MB; model files are limited to {limit / MiB:,.0f} MB "
            "(set FER_MAX_MODEL_MB to change the limit)."
        )
    fmt = sniff_format(path)
    if fmt is None:
        raise ModelFileError(
            f"{name} is not a Keras model file: expected a .keras archive or a legacy .h5 (HDF5) file."
        )
    config, version = _h5_config(path, name) if fmt == "h5" else _keras_config(path, name)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError(f"{name} has no model configuration Keras can read.")
    bad = code_layers(config)
    if bad:
        shown = ", ".join(sorted(set(bad))[:5])
        raise ModelFileError(
            f"{name} was refused: it contains a Lambda layer ({shown}), which stores Python code "
            "that would run when the model is loaded. For safety such files are never loaded. "
            "Rebuild the model with standard layers (for example Rescaling instead of a Lambda "
            "that scales pixels) and save it again."
        )
    return ModelFileFacts(
        format=fmt,
        size_bytes=size,
        keras_version=version,
        class_name=str(config.get("class_name")),
        layer_classes=layer_classes(config.get("config", {})),
    )
