"""Steps the browser tests share (tests/browser/test_pages.py, test_concurrency_browser.py)."""

from __future__ import annotations

import json


def goto(page, server, path: str = "") -> None:
    page.goto(f"{server.url}/{path}", wait_until="domcontentloaded")
    page.wait_for_selector("[data-testid='stAppViewContainer']")


def set_number(page, label: str, value: str) -> None:
    """Type into a st.number_input, waiting out reruns (a rerun can briefly show a stale twin)."""
    from playwright.sync_api import expect

    selector = f"input[aria-label={json.dumps(label)}]"
    single = f"() => document.querySelectorAll({json.dumps(selector)}).length === 1"
    for _ in range(4):
        page.wait_for_function(single, timeout=60_000)
        box = page.locator(selector)
        box.fill(value)
        box.press("Enter")
        page.wait_for_timeout(700)
        page.wait_for_function(single, timeout=60_000)
        if page.locator(selector).input_value() == value:
            break
    expect(page.locator(selector)).to_have_value(value)


def start_training(page, server, epochs: int, settle_ms: int = 800) -> None:
    """Open the Train page, set a short demo run (600 images, no early stopping) and press Train."""
    goto(page, server, "train")
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=120_000)
    for name, value in (("Epochs", str(epochs)), ("Max training images (0 = all)", "600"), ("Early-stopping patience", "0")):
        set_number(page, name, value)
    page.wait_for_timeout(settle_ms)
    page.get_by_role("button", name="Train", exact=True).click()


def start_webcam(page, server, min_seconds: float):
    """Open the Webcam page, press START in the webrtc iframe and wait until the returned video
    has played `min_seconds`; returns the iframe's frame."""
    goto(page, server, "webcam")
    frame_el = page.locator("iframe[title*='streamlit_webrtc']").first
    frame_el.wait_for(timeout=120_000)
    frame = frame_el.element_handle().content_frame()
    frame.get_by_role("button", name="START").click(timeout=60_000)
    frame.wait_for_function(
        "(t) => { const v = document.querySelector('video'); "
        "return v && v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > t; }",
        arg=min_seconds, timeout=90_000)
    return frame
