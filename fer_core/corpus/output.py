"""A corpus job's folder: what it reads, what it wrote, and where it stands.

    OUT/manifest.json     model and its label order, settings, engine, counts, state, times
    OUT/inputs.parquet    the job's items, numbered (fer_core.corpus.inputs)
    OUT/rows/*.parquet    the rows (fer_core.corpus.rows), shard by shard: a Parquet dataset
    OUT/sources.parquet   one row per input file: status, faces, rows, dominant emotion, error

Every shard holds whole items: an item's rows are all in one file. The local engine writes a
shard to a temp file and renames it; a Ray write cut short leaves a file Parquet cannot read,
which `scan_done` removes. So the finished items are exactly those in readable shards, and
`--resume` does the rest, never an item twice.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fer_core.corpus.rows import COLUMNS, to_table
from fer_core.errors import FerError
from fer_core.store.atomic import atomic_replace, atomic_write_json, now_iso
from fer_core.store.lock import exclusive_flock

LOCK_FILE = ".job.lock"
SOURCE_SCHEMA = pa.schema([("item", pa.int64()), ("source", pa.string()), ("kind", pa.string()),
                           ("status", pa.string()), ("faces", pa.int64()), ("rows", pa.int64()),
                           ("dominant", pa.string()), ("error", pa.string())])


class JobFolder:
    def __init__(self, out: str | Path):
        self.root = Path(out)

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs.parquet"

    @property
    def rows_dir(self) -> Path:
        return self.root / "rows"

    @property
    def sources(self) -> Path:
        return self.root / "sources.parquet"

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while a process works on the job: a second one (a resume while it runs) is refused
        instead of removing shards still being written. The kernel drops it when a process dies; a
        refused process leaves the holder's lock file alone."""

        def busy(fd: int) -> FerError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            return FerError(f"{self.root} is being labelled by {holder}; wait for it to end or stop it, "
                            "then --resume")

        with exclusive_flock(self.root / LOCK_FILE, busy) as fd:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
            try:
                yield
            finally:
                if not self.exists():  # no job came of it (refused, nothing to resume): leave nothing behind
                    with contextlib.suppress(OSError):
                        os.unlink(self.root / LOCK_FILE)
                        self.root.rmdir()

    def read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FerError(f"{self.root} holds no corpus job (no manifest.json)") from None
        except (OSError, ValueError) as exc:
            raise FerError(f"{self.manifest_path} cannot be read ({exc})") from None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.manifest_path, {**manifest, "updated": now_iso()})

    def shard_files(self) -> list[Path]:
        if not self.rows_dir.is_dir():
            return []
        return sorted(p for p in self.rows_dir.iterdir() if p.suffix == ".parquet" and not p.name.startswith("."))

    def scan_done(self, n_items: int) -> np.ndarray:
        """Which items have their rows written (bool per item); unreadable shards and temp files go."""
        done = np.zeros(n_items, dtype=bool)
        if not self.rows_dir.is_dir():
            return done
        for p in self.rows_dir.iterdir():
            if p.name.startswith(".") and p.suffix == ".tmp":
                p.unlink(missing_ok=True)
        for p in self.shard_files():
            try:
                items = pq.read_table(p, columns=["item"]).column("item").to_numpy()
            except (OSError, pa.ArrowException):  # a write cut short: its items are done again
                p.unlink(missing_ok=True)
                continue
            done[items[(items >= 0) & (items < n_items)]] = True
        return done

    def write_shard(self, rows: Sequence[dict[str, Any]], first_item: int) -> Path:
        """Rows of whole items as one shard, atomically (a kill leaves it whole or absent)."""
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        path = self.rows_dir / f"part-{first_item:09d}.parquet"
        with atomic_replace(path) as tmp:
            pq.write_table(to_table(rows), tmp)
        return path

    def iter_shards(self, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
        for p in self.shard_files():
            yield pq.read_table(p, columns=list(columns) if columns else None)

    def summarise(self) -> dict[str, int]:
        """Write sources.parquet (one row per finished input, shard by shard) and count the job."""
        counts = {"done": 0, "failed": 0, "no_face": 0, "faces": 0, "rows": 0, "photos": 0, "videos": 0}
        with atomic_replace(self.sources) as tmp, pq.ParquetWriter(tmp, SOURCE_SCHEMA) as writer:
            for table in self.iter_shards():
                summary = per_source(table.to_pandas())
                writer.write_table(pa.Table.from_pandas(summary, SOURCE_SCHEMA, preserve_index=False))
                counts["done"] += len(summary)
                counts["failed"] += int((summary["status"] == "error").sum())
                counts["no_face"] += int((summary["status"] == "no face").sum())
                counts["faces"] += int(summary["faces"].sum())
                counts["rows"] += table.num_rows
                counts["photos"] += int((summary["kind"] == "photo").sum())
                counts["videos"] += int((summary["kind"] == "video").sum())
        return counts

    def read_rows(self, columns: Sequence[str] | None = None) -> Any:
        """All rows as one pandas DataFrame, sorted by item (for tests and small jobs; big jobs: iter_shards)."""
        tables = list(self.iter_shards(columns))
        table = pa.concat_tables(tables) if tables else to_table([]).select(list(columns or COLUMNS))
        keys = [k for k in ("item", "frame", "face", "track_id") if k in table.column_names]
        return table.to_pandas().sort_values(keys, na_position="first", kind="stable", ignore_index=True)

    def write_csv(self, path: str | Path) -> Path:
        """The rows as one CSV file, written shard by shard."""
        import pyarrow.csv as pacsv

        path = Path(path)
        with atomic_replace(path) as tmp:
            writer = None
            for table in self.iter_shards():
                if writer is None:
                    writer = pacsv.CSVWriter(str(tmp), table.schema)
                writer.write_table(table)
            if writer is None:
                pacsv.write_csv(to_table([]), str(tmp))
            else:
                writer.close()
        return path


def per_source(rows: Any) -> Any:
    """One row per item: status (faces / no face / error), faces (a photo's faces, a video's tracks),
    rows, dominant emotion (the most frequent label), error."""
    import pandas as pd

    out = []
    for item, g in rows.groupby("item", sort=True):
        faces = g[g["status"] == "face"]
        kind = str(g["kind"].iloc[0])
        n_faces = int(faces["track_id"].nunique()) if kind == "video" else len(faces)
        status = "faces" if len(faces) else str(g["status"].iloc[0])
        dominant = str(faces["label"].mode().iloc[0]) if len(faces) else None
        out.append({"item": int(item), "source": str(g["source"].iloc[0]), "kind": kind, "status": status,
                    "faces": n_faces, "rows": len(g), "dominant": dominant,
                    "error": g["error"].iloc[0] if status == "error" else None})
    return pd.DataFrame(out, columns=SOURCE_SCHEMA.names)

