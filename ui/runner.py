"""Stop Streamlit from resetting Keras after every script and fragment run.

Streamlit 1.67's script runner calls `keras.backend.clear_session()` after every run of a page
and of every fragment (`script_runner._clean_problem_modules`, unconditionally, whenever keras is
imported). With the TensorFlow backend that resets the default graph, clears TensorFlow's kernel
cache and runs a full `gc.collect()`, all with the GIL held, while the webcam's frame thread,
a video analysis or a training job's reader use the very models it resets. Measured in
Chromium on the Webcam page (benchmarks/webcam_browser.py, py-spy on the server): each rerun of
the page's 1-second stats fragment spent ~300 ms in `clear_session`, the largest holder of the GIL
after the event loop. The app keeps its models for the life of the server (ui.classifiers), so
there is nothing for Streamlit to clear: `keep_keras_session()` replaces that clean-up with one
that keeps Streamlit's other step (closing matplotlib figures) and leaves Keras alone.

`streamlit_app.py` calls it first thing; it is idempotent. If a Streamlit upgrade renames the
hook, it returns False and tests/test_runner_patch.py fails, so the change is noticed.
"""

from __future__ import annotations

import sys


def _close_matplotlib_figures() -> None:
    """Streamlit's clean-up, without the Keras part."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # noqa: BLE001 - as Streamlit: never fail a run over this
            pass


_close_matplotlib_figures.keeps_keras = True  # type: ignore[attr-defined]


def keep_keras_session() -> bool:
    """Replace Streamlit's post-run clean-up (see the module docstring). True when it is in place."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # pragma: no cover - Streamlit moved the module
        return False
    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None:
        return False
    if not getattr(current, "keeps_keras", False):
        _close_matplotlib_figures.streamlit_original = current  # type: ignore[attr-defined]
        script_runner._clean_problem_modules = _close_matplotlib_figures
    return True
