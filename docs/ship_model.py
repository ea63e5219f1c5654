"""Copy a finished, evaluated run into models/<name>/ as a shipped model (a maintainer's tool).

    .venv/bin/python docs/ship_model.py RUN_DIR NAME --command "..." --hardware "..." [--default]

RUN_DIR is a run folder of any model store (it must hold model.keras and meta.json, and the store
its PublicTest evaluation, written by `python -m fer_core evaluate RUN --data fer2013.zip`). The copy
keeps model.keras, meta.json and events.jsonl, bundles that evaluation as evaluation_test.json
(read-only, like the rest of a shipped model), renames the run to NAME and records in
meta.json "shipped" how it was made; --default makes it the model the app and CLI use when
none is named (and clears that flag on the other shipped models).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_core.store.atomic import atomic_write_json  # noqa: E402
from fer_core.store.runs import ModelStore  # noqa: E402

MODELS = ROOT / "models"
KEEP = ("model.keras", "events.jsonl")
MAX_BYTES = 25 * 2**20


def ship(run_dir: Path, name: str, default: bool, command: str, hardware: str) -> Path:
    meta = json.loads((run_dir / "meta.json").read_text())
    if meta.get("status") not in ("finished", "stopped"):
        raise SystemExit(f"{run_dir.name} is {meta.get('status')}: ship a finished or stopped run")
    saved = [e for e in ModelStore(run_dir.parent).list_evaluations(run_dir.name)
             if e.key.split == "test" and not e.key.tta and not e.synthetic]
    if not saved:
        raise SystemExit(f"{run_dir.name} has no test-split evaluation on real data (no TTA): "
                         f"run `python -m fer_core evaluate {run_dir.name} --data fer2013.zip` first")
    if (run_dir / "model.keras").stat().st_size > MAX_BYTES:
        raise SystemExit("model.keras is over 25 MB")
    dest = MODELS / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for f in KEEP:
        if (run_dir / f).exists():
            shutil.copy2(run_dir / f, dest / f)
    meta.update(
        run_id=name,
        name=f"{meta.get('architecture')} on FER-2013 (shipped)",
        shipped={
            "default": default,
            "trained_from_run": run_dir.name,
            "command": command,
            "hardware": hardware,
        },
    )
    atomic_write_json(dest / "meta.json", meta)
    evaluation = json.loads(saved[0].path.read_text())  # the newest
    evaluation["run_id"] = name
    atomic_write_json(dest / "evaluation_test.json", evaluation)
    if default:
        for other in MODELS.glob("*/meta.json"):
            if other.parent == dest:
                continue
            m = json.loads(other.read_text())
            if (m.get("shipped") or {}).get("default"):
                m["shipped"]["default"] = False
                atomic_write_json(other, m)
    return dest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("name")
    p.add_argument("--default", action="store_true")
    p.add_argument("--command", required=True, help="the `python -m fer_core train ...` command that made the run")
    p.add_argument("--hardware", required=True, help="where it was trained, e.g. '2-core x86-64 CPU, TensorFlow 2.21 CPU'")
    a = p.parse_args()
    dest = ship(a.run_dir, a.name, a.default, a.command, a.hardware)
    print(f"shipped {a.run_dir.name} as {dest.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
