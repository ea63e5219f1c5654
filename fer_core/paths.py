"""Where fer-studio keeps things. Each location can be moved with an environment variable (settings)."""

from __future__ import annotations

from pathlib import Path

from fer_core import settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """The model store: FER_MODELS_DIR, or models/ in the project."""
    return Path(settings.text(settings.MODELS_DIR) or PROJECT_ROOT / "models")


def cache_dir() -> Path:
    """Decoded-dataset cache: FER_CACHE_DIR, or ~/.cache/fer-studio (XDG_CACHE_HOME respected)."""
    env = settings.text(settings.CACHE_DIR)
    if env:
        return Path(env)
    base = settings.xdg_cache_home() or Path.home() / ".cache"
    return Path(base) / "fer-studio"


def shared_fer2013_zip() -> Path | None:
    """The team's copy of real FER-2013 (../shared/data/fer2013.zip), when present."""
    env = settings.text(settings.FER2013_ZIP)
    candidates = [Path(env)] if env else []
    candidates.append(PROJECT_ROOT.parent / "shared" / "data" / "fer2013.zip")
    for c in candidates:
        if c.is_file():
            return c
    return None
