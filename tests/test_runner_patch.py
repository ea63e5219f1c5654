"""ui.runner.keep_keras_session: Streamlit's post-run clean-up must leave Keras (and TensorFlow's
kernel cache) alone, while still closing matplotlib figures."""

from __future__ import annotations

import sys
import types

import pytest
from keras.src.backend.common import global_state
from streamlit.runtime.scriptrunner import script_runner

from tests.app_helpers import new_app
from ui.runner import keep_keras_session


@pytest.fixture
def hook():
    """Streamlit's hook as this process has it; put back afterwards."""
    current = script_runner._clean_problem_modules
    yield current
    script_runner._clean_problem_modules = current


def test_streamlit_clears_keras_after_a_run_unless_the_app_keeps_it(hook) -> None:
    streamlit_own = getattr(hook, "streamlit_original", hook)
    global_state.set_global_attribute("fer_probe", 1)
    streamlit_own()  # what Streamlit 1.67 does after every script and fragment run
    assert global_state.get_global_attribute("fer_probe") is None, "Streamlit no longer clears Keras: drop ui/runner.py"

    assert keep_keras_session()
    assert keep_keras_session()  # idempotent
    global_state.set_global_attribute("fer_probe", 2)
    script_runner._clean_problem_modules()
    assert global_state.get_global_attribute("fer_probe") == 2


def test_the_kept_clean_up_still_closes_matplotlib_figures(hook, monkeypatch) -> None:
    closed = []
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", types.SimpleNamespace(close=closed.append))
    keep_keras_session()
    script_runner._clean_problem_modules()
    assert closed == ["all"]


def test_the_app_installs_it_before_its_pages_run(hook, monkeypatch) -> None:
    if getattr(hook, "keeps_keras", False):
        monkeypatch.setattr(script_runner, "_clean_problem_modules", hook.streamlit_original)
    at = new_app()
    assert not at.exception
    assert getattr(script_runner._clean_problem_modules, "keeps_keras", False)
