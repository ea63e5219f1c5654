"""Lazy public APIs for fer_core's packages: each name is imported from its module on first use,
so importing a package costs nothing (no TensorFlow, no OpenCV) and its __init__ stays a list."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_getattr(package: str, api: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` (PEP 562) for `package`: `api` maps public name -> submodule."""

    def __getattr__(name: str) -> Any:
        if name in api:
            return getattr(import_module(f"{package}.{api[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
