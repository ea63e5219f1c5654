"""Render the README's confusion-matrix images of the shipped models (docs/figures/*.png).

Each shipped run's saved PublicTest evaluation (models/<run>/evaluation_test.json) is drawn with
the same plotly figure the Evaluate page shows (fer_core.charts), written as a stand-alone HTML
file and photographed with Debian's Chromium through Playwright (the project's browser-test
tool chain; no extra image-export package).

    .venv/bin/python docs/make_figures.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_core.charts import confusion_matrix_figure  # noqa: E402
from fer_core.store.runs import ModelStore  # noqa: E402

OUT = ROOT / "docs" / "figures"
CHROMIUM = "/usr/bin/chromium"


def render(html: Path, png: Path, width: int = 760, height: int = 640) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(html.as_uri())
        page.wait_for_selector(".main-svg")
        page.screenshot(path=str(png))
        browser.close()


def main() -> int:
    store = ModelStore(ROOT / "models")
    OUT.mkdir(parents=True, exist_ok=True)
    made = 0
    for run in store.list_runs():
        ev = store.load_evaluation(run.run_id, "test")
        if not (run.meta.get("shipped") and ev):
            continue
        title = (f"{run.run_id}: FER-2013 PublicTest, {ev['n']:,} images, accuracy {ev['accuracy']:.1%} "
                 "(share of each true class)")
        fig = confusion_matrix_figure(ev["confusion_matrix"], ev["labels"], normalize=True, title=title)
        fig.update_layout(width=760, height=640, margin=dict(l=80, r=40, t=70, b=70), title_font_size=13)
        with tempfile.TemporaryDirectory() as tmp:
            html = Path(tmp) / "figure.html"
            fig.write_html(html, include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
            png = OUT / f"{run.run_id}-confusion.png"
            render(html, png)
        print(f"wrote {png.relative_to(ROOT)}")
        made += 1
    print(json.dumps({"figures": made}))
    return 0 if made else 1


if __name__ == "__main__":
    sys.exit(main())
