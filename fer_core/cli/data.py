"""`python -m fer_core data SOURCE`: load a dataset, print its class table and data problems."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fer_core.cli.common import add_common, console, load_data


def cmd_data(args: argparse.Namespace) -> int:
    from rich.table import Table

    from fer_core.labels import FER_LABELS

    ds = load_data(args.source, args.progress_bars, use_cache=not args.no_cache)
    con = console()
    title = ds.name + ("  [synthetic]" if ds.synthetic else "")
    table = Table(title=title)
    table.add_column("class")
    splits = list(ds.splits)
    for s in splits:
        table.add_column(s, justify="right")
    counts = ds.report.counts
    for label in FER_LABELS:
        table.add_row(label, *[str(counts.get(s, {}).get(label, 0)) for s in splits])
    table.add_row("total", *[str(len(ds.splits[s].labels)) for s in splits], style="bold")
    con.print(table)
    summary = ds.report.summary()
    con.print(f"source: {ds.report.source} ({ds.report.format}), fingerprint {ds.fingerprint[:12]}")
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
        con.print(f"{key}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(ds.report.to_dict(), indent=2), encoding="utf-8")
        con.print(f"report written to {args.json}")
    return 0


def add_parsers(sub: Any) -> None:
    d = sub.add_parser("data", help="load a dataset and print its class table and data problems")
    d.add_argument("source", help="'demo', a Kaggle image-folder zip, its extracted folder, or fer2013.csv")
    d.add_argument("--no-cache", action="store_true", help="decode again even if a cached copy exists")
    d.add_argument("--json", metavar="FILE", help="also write the full load report as JSON")
    add_common(d)
    d.set_defaults(func=cmd_data)
