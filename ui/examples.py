"""Example photos a newcomer can try on the Predict page (assets/examples, made by docs/make_app_images.py)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "examples"

#: file name -> what the button says
EXAMPLES: dict[str, str] = {
    "astronaut.jpg": "Astronaut (one face)",
    "cameraman.jpg": "Cameraman (face turned, grey)",
    "two_people.jpg": "Two people",
    "cat_no_face.jpg": "A cat (no human face)",
}


def available_examples() -> list[str]:
    """The example photos present in this checkout, in display order."""
    return [name for name in EXAMPLES if (EXAMPLES_DIR / name).is_file()]


def example_upload(name: str) -> tuple[str, bytes]:
    """(name, bytes) as an upload of that photo would give them."""
    return name, (EXAMPLES_DIR / name).read_bytes()
