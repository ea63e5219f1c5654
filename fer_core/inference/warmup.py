"""Load models ahead of need: a process-wide cache of loaded classifiers, filled in the background.

A first prediction on a cold process pays for `import tensorflow` (~4 s), loading the model,
compiling its call, loading the face detector (yuface + OpenMP) and plotly's first figure:
more than 15 s on a loaded 2-core machine. The app starts `LoadCache.submit(key, loader)` for
the default model as soon as it opens, in a daemon thread, so the page that needs the model
later finds it loaded (or joins the load already in flight instead of starting a second one).

No Streamlit here (see ui/warmup.py for the app side) and no TensorFlow at import time: the
loaders import it inside the background thread.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_core import settings

ABSENT, LOADING, READY, FAILED = "absent", "loading", "ready", "failed"

def preload_enabled() -> bool:
    """The app's background preload (FER_PRELOAD "0" turns it off; default on)."""
    return settings.preload_enabled()


@dataclass
class LoadState:
    state: str  # ABSENT | LOADING | READY | FAILED
    seconds: float | None = None  # load time, once READY
    error: str | None = None  # once FAILED
    thread: str | None = None  # the thread that ran the loader


class LoadCache:
    """Keyed cache of expensive objects (loaded classifiers); at most one load per key at a time.

    `get(key, loader)` returns the cached value, joins a load of the same key already in flight
    (e.g. the background preload), or runs `loader` in the calling thread. `submit(key, loader)`
    starts the load in a daemon thread and returns at once. A failed load is forgotten (the next
    `get` tries again) but its error stays readable through `state(key)`. The `max_entries` most
    recently used finished values are kept.
    """

    def __init__(self, max_entries: int = 3) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Any, Future] = OrderedDict()
        self._states: dict[Any, LoadState] = {}
        self.loads: dict[Any, int] = {}  # key -> how many times a loader ran (tests, diagnostics)

    # -- reading ----------------------------------------------------------------------------------

    def state(self, key: Any) -> LoadState:
        with self._lock:
            return self._states.get(key, LoadState(ABSENT))

    def is_ready(self, key: Any) -> bool:
        return self.state(key).state == READY

    # -- loading ----------------------------------------------------------------------------------

    def _claim(self, key: Any) -> tuple[Future, bool]:
        """(future for key, True if the caller must run the loader)."""
        with self._lock:
            fut = self._entries.get(key)
            if fut is not None:
                self._entries.move_to_end(key)
                return fut, False
            fut = Future()
            self._entries[key] = fut
            self._states[key] = LoadState(LOADING, thread=threading.current_thread().name)
            self.loads[key] = self.loads.get(key, 0) + 1
            return fut, True

    def _run(self, key: Any, fut: Future, loader: Callable[[], Any]) -> None:
        t0 = time.perf_counter()
        try:
            value = loader()
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter
            with self._lock:
                if self._entries.get(key) is fut:
                    del self._entries[key]
                self._states[key] = LoadState(FAILED, error=f"{type(exc).__name__}: {exc}"[:500],
                                              thread=threading.current_thread().name)
            fut.set_exception(exc)
            return
        with self._lock:
            self._states[key] = LoadState(READY, seconds=time.perf_counter() - t0,
                                          thread=self._states.get(key, LoadState(READY)).thread)
        fut.set_result(value)
        with self._lock:
            self._evict()

    def _evict(self) -> None:
        done = [k for k, f in self._entries.items() if f.done()]
        while len(done) > self.max_entries:
            k = done.pop(0)
            self._entries.pop(k, None)
            self._states.pop(k, None)

    def get(self, key: Any, loader: Callable[[], Any]) -> Any:
        fut, mine = self._claim(key)
        if mine:
            self._run(key, fut, loader)
        return fut.result()

    def submit(self, key: Any, loader: Callable[[], Any], *, thread_name: str = "fer-preload") -> bool:
        """Load `key` in a daemon thread unless it is loaded, loading or failed before (a failed
        key is retried by `get` only, when a page asks for it); True if a load started."""
        with self._lock:
            if key in self._entries or key in self._states:
                return False

        def work() -> None:
            fut, mine = self._claim(key)
            if mine:
                self._run(key, fut, loader)

        threading.Thread(target=work, name=thread_name, daemon=True).start()
        return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._states.clear()
            self.loads.clear()


# --------------------------------------------------------------------------- classifiers


def classifier_key(store_root: Any, run: Any) -> tuple[str, str, str]:
    """Cache key of a run's classifier: changes when its model file or meta.json changes
    (label order and scaling live in meta.json)."""
    stamps = []
    for path in (run.model_path, run.path / "meta.json"):
        try:
            st_ = path.stat()
            stamps.append(f"{st_.st_mtime_ns}-{st_.st_size}")
        except OSError:
            stamps.append("missing")
    return (str(store_root), run.run_id, "/".join(stamps))


def load_classifier(store: Any, run_id: str, *, warm: bool = True):
    """The run's EmotionClassifier (imports TensorFlow), with the rest of the prediction path
    warmed (`warm_prediction_path`) so that the first real prediction pays for nothing else."""
    from fer_core.inference.classifier import EmotionClassifier

    classifier = EmotionClassifier.from_store(store, run_id)
    if warm:
        try:
            warm_prediction_path(classifier)
        except Exception:  # noqa: BLE001 - best effort: the page reports real errors when it predicts
            pass
    return classifier


def warm_prediction_path(classifier: Any) -> None:
    """Load and run once what a first prediction touches besides the model: the default face
    detector (yuface and its OpenMP runtime), cropping, batched classification, drawing and
    plotly's probability chart (its first figure loads plotly's validators: ~1 s)."""
    from fer_core.charts import probability_figure
    from fer_core.inference.batch_predict import STILL_IMAGE_DETECT_WIDTH, annotate, predict_images
    from fer_core.inference.faces import make_detector
    from fer_core.labels import FER_LABELS

    frame = np.full((240, 320, 3), 127, np.uint8)
    detector = make_detector("auto", max_width=STILL_IMAGE_DETECT_WIDTH)
    results = predict_images([("warm-up", frame)], detector, classifier, True)
    annotate(frame, results[0])
    probs = results[0].faces[0].probabilities if results and results[0].faces else np.full(7, 1 / 7)
    probability_figure(probs, list(FER_LABELS), height=210).to_json()
