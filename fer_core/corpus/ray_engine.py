"""The Ray engine: the same work on Ray Data, on a laptop (a local Ray started for the job) or on
an existing cluster (`address`: "auto", "ray://HOST:PORT", or the job's own when sent as a Ray Job).

    from_arrow(items not done yet)                            # the job's paths (--resume: the rest)
      -> map_batches(find_faces_batch)                        # photos: read, detect, crop
      -> map_batches(ClassifyBatch, ActorPoolStrategy, num_gpus where the cluster has GPUs)
      -> write_parquet(OUT/rows)                              # rows of whole items per file

A video goes through the video engine in a classifier actor (one task per video). Each output
file holds whole items, so `--resume` (fer_core.corpus.output.scan_done) works as with the local
engine. Every worker reads the files and the model store by path: on a cluster, put the corpus,
OUT and the model store on storage every node sees (docs/SCALE.md).
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fer_core.corpus.inputs import Item
from fer_core.corpus.output import JobFolder
from fer_core.corpus.progress import Tracker
from fer_core import settings as env
from fer_core.errors import FerError

BATCH = 16  # items per Ray batch
FACES_TYPE = pa.list_(pa.struct([("x", pa.int32()), ("y", pa.int32()), ("w", pa.int32()), ("h", pa.int32()),
                                 ("score", pa.float32()), ("whole", pa.bool_()), ("crop", pa.binary()),
                                 ("shape", pa.list_(pa.int32()))]))


def _remaining_blocks(folder: JobFolder, done: np.ndarray, actors: int) -> list[pa.Table]:
    """The items not done yet (--resume), in blocks of at most 256 and at least 4 per actor: the
    dataset of paths, made here so no read task has to wait for a CPU the actors hold."""
    import pyarrow.parquet as pq

    table = pq.read_table(folder.inputs)
    table = table.filter(pa.array(~done[table.column("item").to_numpy()]))
    n = table.num_rows
    size = max(1, min(256, -(-n // max(1, 4 * actors))))
    return [table.slice(start, size) for start in range(0, n, size)] or [table]


def _item(row: dict[str, Any]) -> Item:
    return Item(int(row["item"]), row["source"], row["path"], row["member"], row["kind"], row["error"])


def find_faces_batch(batch: pa.Table, detector: str, whole_image: bool) -> pa.Table:
    """Photos read and their faces found and cropped (one row per item; videos pass through)."""
    from fer_core.corpus.work import find_in_item

    errors, faces = [], []
    for row in batch.to_pylist():
        item = _item(row)
        if item.kind == "video":
            errors.append(item.error)
            faces.append([])
            continue
        found = find_in_item(item, detector, whole_image)
        errors.append(found.result.error)
        faces.append([{"x": b.x, "y": b.y, "w": b.w, "h": b.h, "score": b.score, "whole": whole,
                       "crop": np.ascontiguousarray(c).tobytes(), "shape": list(c.shape)}
                      for b, whole, c in zip(found.boxes, found.whole, found.crops)])
    return batch.drop_columns(["error"]).append_column("error", pa.array(errors, pa.string())) \
        .append_column("faces", pa.array(faces, FACES_TYPE))


class ClassifyBatch:
    """A Ray actor: the job's classifier, loaded once; found faces -> rows, videos -> rows.
    Its settings are class attributes (`for_job`), so nothing waits in Ray's object store for a restart."""

    models_dir = ""
    run_id = ""
    detector = "auto"
    max_fps: float | None = None

    @classmethod
    def for_job(cls, **settings: Any) -> type[ClassifyBatch]:
        return type("ClassifyBatch", (cls,), settings)

    def __init__(self) -> None:
        from fer_core.inference.classifier import EmotionClassifier
        from fer_core.store.runs import ModelStore

        self.classifier = EmotionClassifier.from_store(ModelStore(self.models_dir), self.run_id, warm_up_to=1)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from fer_core.corpus.rows import to_table
        from fer_core.corpus.work import classified_rows, video_item_rows
        from fer_core.inference.batch_predict import FoundFaces, ImageResult
        from fer_core.inference.boxes import Box

        rows: list[dict[str, Any]] = []
        photos: list[Item] = []
        found: list[FoundFaces] = []
        for row in batch.to_pylist():
            item = _item(row)
            if item.kind == "video":
                rows += video_item_rows(item, self.classifier, self.detector, self.max_fps, self.run_id)
                continue
            f = FoundFaces(ImageResult(item.source, error=row["error"]))
            for face in row["faces"] or []:
                f.boxes.append(Box(face["x"], face["y"], face["w"], face["h"], face["score"]))
                f.whole.append(bool(face["whole"]))
                f.crops.append(np.frombuffer(face["crop"], np.uint8).reshape(face["shape"]))
            photos.append(item)
            found.append(f)
        rows = classified_rows(photos, found, self.classifier, self.run_id) + rows
        return to_table(rows)


@dataclass
class RayEngine:
    model: str
    settings: Any  # fer_core.corpus.job.BatchSettings
    address: str | None = None
    workers: int = 0  # classifier actors (0: one per CPU of the cluster, at most 8 per GPU-less node)
    models_dir: str = ""

    def _init(self) -> Any:
        try:
            import ray
        except ImportError:
            raise FerError("the Ray engine needs Ray: pip install -r requirements-ray.txt") from None
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local Ray for one job: no token file
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # its C++ notes are not the command's output
        warnings.filterwarnings("ignore", module=r"ray\..*")
        import fer_core

        import logging

        logging.getLogger("ray").setLevel(logging.ERROR)
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                                  "runtime_env": {"py_modules": [str(Path(fer_core.__file__).parent)],
                                                  "env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2",
                                                               "OMP_WAIT_POLICY": "passive"}}}
        address = self.address or env.text(env.RAY_ADDRESS)  # a Ray Job's own cluster
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = os.cpu_count() or 1
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise FerError(f"cannot start or reach Ray ({address or 'a local Ray'}): {exc}") from None
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ctx.op_resource_reservation_enabled = False  # per-stage CPU reservations starve a small node
        return ray

    def run(self, folder: JobFolder, done: np.ndarray, tracker: Tracker,
            cancel: threading.Event | None = None) -> str | None:
        ray = self._init()
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(folder, tracker, stop, cancel, ray), daemon=True)
        try:
            resources = ray.cluster_resources()
            gpus = float(resources.get("GPU", 0))
            actors = self.workers or (int(gpus) if gpus else max(1, int(resources.get("CPU", 1))))
            s = self.settings
            ds = ray.data.from_arrow(_remaining_blocks(folder, done, actors))
            ds = ds.map_batches(find_faces_batch, batch_size=BATCH, batch_format="pyarrow", num_cpus=0.5,
                                fn_kwargs={"detector": s.detector, "whole_image": s.whole_image})
            job = ClassifyBatch.for_job(models_dir=self.models_dir, run_id=self.model, detector=s.detector,
                                        max_fps=s.max_fps)
            ds = ds.map_batches(job, batch_size=BATCH, batch_format="pyarrow",
                                compute=ray.data.ActorPoolStrategy(size=actors),
                                num_cpus=0 if gpus else 0.5, num_gpus=1 if gpus else 0)
            folder.rows_dir.mkdir(parents=True, exist_ok=True)
            watcher.start()
            ds.write_parquet(str(folder.rows_dir), ray_remote_args={"num_cpus": 0.25})
        except KeyboardInterrupt:
            return "interrupted"
        except Exception as exc:  # noqa: BLE001 - Ray wraps worker errors in its own types
            if cancel is not None and cancel.is_set():
                return "cancelled"
            raise FerError(f"the Ray job failed: {type(exc).__name__}: {str(exc)[:2000]}") from None
        finally:
            stop.set()
            ray.shutdown()
        return None


def _watch(folder: JobFolder, tracker: Tracker, stop: threading.Event, cancel: threading.Event | None, ray: Any) -> None:
    """Count the files Ray has written (progress); on cancel, end the Ray session."""
    import pyarrow.parquet as pq

    seen: set[str] = {p.name for p in folder.shard_files()}
    while not stop.wait(1.0):
        if cancel is not None and cancel.is_set():
            ray.shutdown()
            return
        for p in folder.shard_files():
            if p.name in seen:
                continue
            try:
                t = pq.read_table(p, columns=["item", "status"]).to_pandas()
            except (OSError, pa.ArrowException):
                continue  # still being written
            seen.add(p.name)
            per_item = t.groupby("item")["status"].first()
            tracker.add_counts(len(per_item), int((t["status"] == "face").sum()), int((per_item == "error").sum()))
