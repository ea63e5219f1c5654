"""fer_core.data: read FER-2013 (Kaggle zip, extracted folder, CSV) or the synthetic demo set.

    from fer_core.data import load_dataset
    ds = load_dataset("fer2013.zip")          # or a folder, a .csv, or "demo"
    ds.split("train").images                  # uint8 (N, 48, 48); labels are FER_LABELS indices
    ds.report.summary()                       # skipped / blank / duplicates

No TensorFlow and no Streamlit here.
"""

from fer_core.data.demo import render_face
from fer_core.data.loader import DEMO_SOURCE, load_dataset, load_demo
from fer_core.data.safezip import DEFAULT_LIMITS, ZipLimits, check_zip
from fer_core.data.types import Dataset, LoadReport, Split

__all__ = [
    "DEFAULT_LIMITS",
    "DEMO_SOURCE",
    "Dataset",
    "LoadReport",
    "Split",
    "ZipLimits",
    "check_zip",
    "load_dataset",
    "load_demo",
    "render_face",
]
