"""What every page uses: its header, and the error box that replaces a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from fer_core.errors import FerError


def page_header(title: str, icon: str, intro: str) -> None:
    st.title(f"{icon} {title}" if icon else title)
    st.caption(intro)


@contextlib.contextmanager
def friendly_errors(action: str = "", hint: str = "") -> Iterator[None]:
    """Show FerError (and anything unexpected) as st.error with what to do; never a traceback.

    Streamlit's own control-flow exceptions (st.rerun, st.stop, st.switch_page) pass through.
    """
    try:
        yield
    except FerError as exc:
        prefix = f"{action}: " if action else ""
        st.error(f"{prefix}{exc}" + (f"\n\n{hint}" if hint else ""), icon=":material/error:")
    except Exception as exc:  # noqa: BLE001
        if _is_streamlit_control_flow(exc):
            raise
        prefix = f"{action} failed" if action else "Something went wrong"
        st.error(
            f"{prefix}: {type(exc).__name__}: {str(exc)[:500]}"
            + (f"\n\n{hint}" if hint else "\n\nCheck the input and try again; if it keeps happening, report it with this message."),
            icon=":material/error:",
        )


def _is_streamlit_control_flow(exc: BaseException) -> bool:
    """st.rerun / st.stop / st.switch_page raise these; they must reach Streamlit."""
    try:
        from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException
    except ImportError:  # pragma: no cover - other Streamlit layouts
        return (type(exc).__module__ or "").startswith("streamlit.")
    return isinstance(exc, ScriptControlException)
