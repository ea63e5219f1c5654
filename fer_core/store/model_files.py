"""Model files: save (atomic, float32, optimizer-free by default) and load (checked as data first, safe_mode)."""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_core.errors import ModelFileError

if TYPE_CHECKING:  # pragma: no cover
    import keras


from fer_core.store.atomic import atomic_replace


def inference_copy(model: keras.Model) -> keras.Model:
    """An uncompiled float32 copy of `model` with the same weights (what inference needs).

    Built from the model's layer config with every mixed-precision policy made float32 (a
    bf16-trained model keeps float32 weights, so they carry over as they are):
    `keras.models.clone_model` (Keras 3.15) also clones the compile state, and the
    optimizer's slots would be saved with the copy (3x the file).
    """
    from fer_core.store.model_files import float32_config

    twin = type(model).from_config(float32_config(model.get_config()))
    twin.set_weights(model.get_weights())
    return twin


def _is_mixed(model: keras.Model) -> bool:
    return any(str(getattr(getattr(layer, "dtype_policy", None), "name", "")).startswith("mixed_")
               for layer in getattr(model, "layers", []))


def save_model_file(model: keras.Model, path: Path, include_optimizer: bool = False) -> None:
    """Save a keras model to `path` (.keras) atomically: tmp file in the same folder + os.replace.

    Without `include_optimizer` the file holds an uncompiled float32 model (see inference_copy).
    """
    import keras

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model files must end in .keras; got {path.name}")
    if not include_optimizer and (getattr(model, "optimizer", None) is not None or _is_mixed(model)):
        model = inference_copy(model)
    with atomic_replace(path, suffix=".tmp.keras") as tmp:
        keras.saving.save_model(model, tmp)


@contextlib.contextmanager
def _with_suffix(path: Path, suffix: str) -> Iterator[Path]:
    """`path` itself when its suffix already tells Keras the format, else a symlink that does."""
    if path.suffix.lower() == suffix or (suffix == ".h5" and path.suffix.lower() == ".hdf5"):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="fer-model-") as tmp:
        link = Path(tmp) / f"model{suffix}"
        link.symlink_to(path.resolve())
        yield link


def load_model_file(path: Path | str, compile: bool = False, num_classes: int | None = None) -> keras.Model:
    """Load a stand-alone .keras (or legacy .h5) model with safe_mode=True.

    Any failure (missing file, not a model, unsafe content such as a Lambda layer, wrong
    number of outputs) raises ModelFileError with a message meant for the user.
    """
    from fer_core.store.safety import inspect_model_file

    path = Path(path)
    # Read the config as data first: refuses Lambda layers (code) without deserializing them,
    # non-model files, oversized files and archive bombs; tells .keras from .h5 by content.
    facts = inspect_model_file(path)
    # Models saved by Keras 2 name their input as a list; calling them with one tensor works
    # but Keras 3 warns on every call. Harmless: keep it out of the logs.
    warnings.filterwarnings("ignore", message=r"The structure of `inputs` doesn't match", category=UserWarning)
    try:
        import keras

        with _with_suffix(path, ".keras" if facts.format == "keras" else ".h5") as loadable:
            model = keras.saving.load_model(loadable, compile=compile, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a user-facing message
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text or "unsafe" in text.lower():
            raise ModelFileError(
                f"{path.name} was refused: it contains code that would run on loading (for example "
                "a Lambda layer), which is not allowed for safety. Re-save the model without "
                "Lambda layers or custom code."
            ) from exc
        short = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
        raise ModelFileError(f"{path.name} could not be loaded as a Keras model: {short}") from exc
    if not hasattr(model, "inputs") or not hasattr(model, "outputs") or not callable(model):
        raise ModelFileError(f"{path.name} does not contain a Keras model.")
    try:
        inputs, outputs = model.inputs, model.outputs
    except Exception:  # noqa: BLE001 - subclassed models without symbolic tensors
        inputs = outputs = None
    if inputs is not None and outputs is not None:
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(
                f"{path.name} has {len(inputs)} inputs and {len(outputs)} outputs; "
                "an emotion model needs exactly one image input and one class output."
            )
        if num_classes is not None:
            out = tuple(outputs[0].shape)
            if len(out) != 2 or out[-1] != num_classes:
                raise ModelFileError(
                    f"{path.name} outputs shape {out}; expected (None, {num_classes}) class scores."
                )
    return model


def float32_config(config: Any) -> Any:
    """A copy of a Keras model config with every mixed-precision dtype policy made float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and isinstance(config.get("config"), dict):
            name = str(config["config"].get("name", ""))
            if name.startswith("mixed_"):
                return {**config, "config": {**config["config"], "name": "float32"}}
        return {
            k: ("float32" if k == "dtype" and isinstance(v, str) and v.startswith("mixed_") else float32_config(v))
            for k, v in config.items()
        }
    if isinstance(config, list):
        return [float32_config(v) for v in config]
    return config
