"""What a finished corpus job says, for the Batch page and the CLI: counts per emotion and per
folder (read shard by shard, never the whole table at once), the per-file table, charts, and the
downloads (one Parquet file, one CSV)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fer_core.corpus.output import SOURCE_SCHEMA, JobFolder
from fer_core.corpus.rows import ROW_SCHEMA
from fer_core.labels import FER_LABELS


def _folder_of(source: str) -> str:
    parent = str(PurePosixPath(source).parent)
    return "(top)" if parent in ("", ".") else parent


def emotion_counts(folder: JobFolder) -> Any:
    """Faces per emotion, and per folder of the sources: a DataFrame (folder, label, faces)."""
    import pandas as pd

    parts = []
    for table in folder.iter_shards(["source", "status", "label"]):
        df = table.to_pandas()
        df = df[df["status"] == "face"]
        if len(df):
            df = df.assign(folder=df["source"].map(_folder_of))
            parts.append(df.groupby(["folder", "label"]).size().rename("faces").reset_index())
    if not parts:
        return pd.DataFrame({"folder": pd.Series(dtype="string"), "label": pd.Series(dtype="string"),
                             "faces": pd.Series(dtype="int64")})
    return pd.concat(parts).groupby(["folder", "label"], as_index=False)["faces"].sum()


def sources_table(folder: JobFolder, limit: int = 10_000) -> Any:
    """The per-file summary (sources.parquet), at most `limit` rows, and the total number of files."""
    import pandas as pd

    if not folder.sources.is_file():
        return pd.DataFrame(columns=SOURCE_SCHEMA.names), 0
    pf = pq.ParquetFile(folder.sources)
    total = pf.metadata.num_rows
    batches = []
    n = 0
    for batch in pf.iter_batches(batch_size=min(limit, 10_000)):
        batches.append(batch)
        n += batch.num_rows
        if n >= limit:
            break
    table = pa.Table.from_batches(batches, SOURCE_SCHEMA) if batches else SOURCE_SCHEMA.empty_table()
    return table.slice(0, limit).to_pandas(), total


def emotion_figure(counts: Any) -> Any:
    import plotly.express as px

    from fer_core.colors import EMOTION_HEX

    totals = counts.groupby("label", as_index=False)["faces"].sum()
    fig = px.bar(totals, x="label", y="faces", color="label", category_orders={"label": list(FER_LABELS)},
                 color_discrete_map=EMOTION_HEX, title="Faces per emotion")
    fig.update_layout(showlegend=False, height=320, margin=dict(t=40, b=10, l=10, r=10), xaxis_title=None)
    return fig


def folder_figure(counts: Any, top: int = 25) -> Any:
    import plotly.express as px

    from fer_core.colors import EMOTION_HEX

    biggest = counts.groupby("folder")["faces"].sum().nlargest(top).index
    data = counts[counts["folder"].isin(biggest)]
    fig = px.bar(data, y="folder", x="faces", color="label", orientation="h", color_discrete_map=EMOTION_HEX,
                 category_orders={"label": list(FER_LABELS)},
                 title="Faces per emotion in each folder" + (f" (the {top} largest)" if len(biggest) == top else ""))
    fig.update_layout(height=max(320, 120 + 24 * len(biggest)), margin=dict(t=40, b=10, l=10, r=10),
                      legend_title_text="", yaxis_title=None)
    return fig


def write_parquet_file(folder: JobFolder, path: Any) -> Any:
    """Every row in one Parquet file (written shard by shard)."""
    with pq.ParquetWriter(path, ROW_SCHEMA) as writer:
        for table in folder.iter_shards():
            writer.write_table(table.cast(ROW_SCHEMA))
    return path
