"""What every command shares: the console, progress bars (only on a terminal), dataset loading,
the metric table, the --no-progress option. Command modules import this, never each other."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def console() -> Any:
    from rich.console import Console

    # Not a terminal (a pipe, a log file): wide lines rather than wrapped cells.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def tqdm_progress(desc: str, enabled: bool) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A (done, total) callback drawing a tqdm bar, and a close function."""
    if not enabled:
        return (lambda done, total: None), (lambda: None)
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False)
        b = bar["bar"]
        b.total = total
        b.n = done
        b.refresh()

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close


def load_data(source: str, show_progress: bool, use_cache: bool = True) -> Any:
    from fer_core.data import load_dataset

    update, close = tqdm_progress("decoding images", show_progress)
    try:
        return load_dataset(source, use_cache=use_cache, progress=update)
    finally:
        close()


def pct(v: Any) -> str:
    return "-" if v is None else f"{100 * float(v):.1f}%"


def print_evaluation(result: dict[str, Any]) -> None:
    from rich.table import Table

    con = console()
    per_class = result.get("per_class") or {}
    ds = result.get("dataset") or {}
    table = Table(title=f"{result.get('run_id', '')} on {ds.get('name') or 'a dataset'}, {result.get('split')} "
                  f"split ({result.get('n')} images)" + ("  TTA" if result.get("tta") else "")
                  + ("  [yellow]synthetic demo data[/yellow]" if ds.get("synthetic") else ""))
    for col in ("class", "precision", "recall", "f1", "support", "ROC AUC"):
        table.add_column(col, justify="left" if col == "class" else "right")

    def num(v: Any) -> str:
        return "-" if v is None else f"{float(v):.3f}"

    for label in result.get("labels") or []:
        row = per_class.get(label) or {}
        table.add_row(label, num(row.get("precision")), num(row.get("recall")), num(row.get("f1")),
                      str(int(row.get("support") or 0)), num(row.get("roc_auc")))
    con.print(table)
    con.print(
        f"accuracy {pct(result.get('accuracy'))}   macro F1 {num(result.get('macro_f1'))}   "
        f"macro ROC AUC {num(result.get('macro_roc_auc'))}   log loss {num(result.get('log_loss'))}   "
        f"ECE {num(result.get('ece'))}"
        + (f" (temperature {float(result['temperature']):.2f})" if (result.get("temperature") or 1.0) != 1.0 else "")
        + f"   ({result.get('images_per_second')} images/s)"
    )
    if result.get("warning"):
        con.print(f"[yellow]warning:[/yellow] {result['warning']}")


def add_common(sp: argparse.ArgumentParser) -> None:
    """Options every command that loads data or models takes."""
    sp.add_argument("--no-progress", action="store_true",
                    help="no progress output (bars are drawn only when stderr is a terminal)")
