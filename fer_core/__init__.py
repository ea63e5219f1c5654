"""fer_core: the library behind fer-studio.

Import-light on purpose: nothing here imports TensorFlow or Streamlit, so pages and
the CLI start fast. Heavy modules (training, models, evaluation) import TensorFlow
lazily inside their functions or at their own import.
"""

from fer_core.labels import ALPHABETICAL_LABELS, FER_LABELS

__all__ = ["FER_LABELS", "ALPHABETICAL_LABELS", "__version__"]
__version__ = "0.1.0"
