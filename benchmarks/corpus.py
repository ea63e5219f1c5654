"""Labelling a corpus: `python -m fer_core batch` (local and Ray engines) against today's `predict` and
a naive loop, on the same photos; memory on a corpus ten times larger; a Ray cluster of 1 and 2 nodes
on this machine; clips; and per-stage costs, for the projection in docs/SCALE.md.

    .venv/bin/python benchmarks/corpus.py                                  # 2,000 photos, 20,000 for memory (about 20 min on 2 cores)
    .venv/bin/python benchmarks/corpus.py --photos 150 --clips 1 --skip-big --skip-cluster   # smoke run
    .venv/bin/python benchmarks/corpus.py --corpus-dir ~/fer-corpora --json corpus.json   # keep, reuse corpora

Every command runs in a process of its own, as a user runs it: wall time from start to exit, start-up
included; peak memory is the peak of the summed RSS of the process and all its descendants, sampled
every 0.1 s from /proc (a local Ray's daemons and workers are the driver's children and count; a
cluster's are not: they are sampled apart). Measured, in one run:

1. the corpus (benchmarks/corpus_maker.py): `--photos` 640x480 photos with 1-4 faces, 2 broken files;
   `--clips` 4-second clips in a folder of their own (FER-2013 faces when ../shared/data/fer2013.zip is there);
2. photos/s and faces/s of a naive loop (file by file, one classifier call per face), `predict` (today),
   `batch` (local engine) and `batch --engine ray` (a local Ray started by the job); goals: local >= 1.3x
   predict, ray >= 0.9x local;
3. peak RSS of the local engine on a `--big` corpus vs the `--photos` one (goal: within 10%, under 1.5 GB);
4. a Ray cluster of 1, then 2 nodes (`ray start`, 1 CPU each) on this machine, and whether its rows
   equal the local engine's (on one machine this shows Ray's overhead, not a speed-up); the cluster is
   stopped by process id, not `ray stop --force` (which kills every Ray of the user on the machine);
5. the clips through `batch`: video seconds per wall second;
6. per-stage costs in one thread (decode, YuNet detection, classification in batches of 64);
7. whether the local and Ray engines' rows are the same (items, sources, statuses, boxes, labels;
   probabilities within 1e-5).

The machine should be otherwise idle: the figures are wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.corpus_runs import (LocalCluster, Measured, bench_env, child_naive, child_stages,  # noqa: E402
                                    compare_rows, goal, ratio, run_measured, same, table)

PY = sys.executable
FER_ZIP = ROOT.parent / "shared" / "data" / "fer2013.zip"
GOAL_VS_PREDICT, GOAL_RAY_VS_LOCAL, GOAL_FLAT, GOAL_PEAK_MB = 1.3, 0.9, 0.10, 1536.0
OK_EXIT = (0, 5)  # 5: done, some files could not be read (the corpus's broken files)


def log(msg: str) -> None:
    print(f"[corpus {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the corpora ----------------------------------------------------------------------------------------

def ensure_corpus(path: Path, photos: int, clips: int = 0) -> dict[str, Any]:
    """The corpus at `path` (made unless `facts.json` says it is already this one); its facts."""
    from benchmarks.corpus_maker import make_corpus

    fer_zip = FER_ZIP if FER_ZIP.is_file() else None
    want = {"photos": photos, "clips": clips, "broken": 2 if photos else 0, "seed": 0, "fer_zip": fer_zip is not None}
    marker = path / "facts.json"
    if marker.is_file():
        facts = json.loads(marker.read_text())
        if {k: facts.get(k) for k in want} == want:
            log(f"reusing {path}")
            return facts
    shutil.rmtree(path, ignore_errors=True)
    log(f"making {photos:,} photos and {clips} clip(s) in {path}")
    t = time.perf_counter()
    made = make_corpus(path, photos, fer_zip=fer_zip, broken=want["broken"], clips=clips)
    facts = {**want, "files": photos, "faces_placed": made.faces_placed, "no_face": made.no_face,
             "broken_files": len(made.broken), "video_seconds": 4.0 * clips, "made_in_s": round(time.perf_counter() - t, 1)}
    marker.write_text(json.dumps(facts, indent=1))
    return facts


# -- the measured commands ------------------------------------------------------------------------------

def measure(label: str, cmd: list[str], files: int, *, env: dict[str, str], faces: Any = None,
            cluster: LocalCluster | None = None) -> dict[str, Any]:
    """Run and measure `cmd`; `faces(Measured)` reads the number of faces from what it wrote. A command
    still running after 300 s + 1 s a file is taken as hung and killed (for a cluster, `ray status` first)."""
    log(f"{label}: {' '.join(cmd[1:] if cmd[0] == PY else cmd)}")
    roots = cluster.roots() if cluster else None
    m: Measured = run_measured(cmd, env=env, cwd=ROOT, cluster=(lambda: roots) if cluster else None,
                               timeout_s=300 + files, on_timeout=cluster.status if cluster else None)
    row: dict[str, Any] = {"run": label, "rc": m.rc, "files": files, "wall_s": m.wall_s, "peak_mb": m.peak_mb,
                           "peak_with_cluster_mb": m.peak_with_cluster_mb, "ok": m.rc in OK_EXIT and not m.timed_out}
    if not row["ok"]:
        row["error"] = f"timed out after {m.wall_s:.0f} s" if m.timed_out else f"exit {m.rc}"
        row["output"], row["status_at_timeout"] = m.tail(), m.note
        log(f"{label} FAILED ({row['error']}):\n{m.tail()}\n{m.note}")
        return row
    row["faces"] = faces(m) if faces else None
    row["photos_per_s"] = files / m.wall_s
    row["faces_per_s"] = row["faces"] / m.wall_s if row["faces"] is not None else None
    log(f"{label}: {m.wall_s:.1f} s, {row['photos_per_s']:.1f} files/s, peak {m.peak_mb:,.0f} MB")
    return row


def batch_cmd(src: Path, out: Path, *extra: str) -> list[str]:
    return [PY, "-m", "fer_core", "batch", str(src), "--out", str(out), "--no-progress", *extra]


def manifest_faces(out: Path) -> Any:
    def read(_: Measured) -> int:
        return int(json.loads((out / "manifest.json").read_text())["counts"]["faces"])
    return read


def csv_faces(path: Path) -> Any:
    def read(_: Measured) -> int:
        import pandas as pd
        return int(pd.read_csv(path)["face"].notna().sum())
    return read


def child_faces(m: Measured) -> int:
    return int(json.loads(m.stdout.strip().splitlines()[-1])["faces"])


def rows_of(out: Path) -> Any:
    from fer_core.corpus.output import JobFolder

    return JobFolder(out).read_rows()


def identity(a: Path, b: Path) -> dict[str, Any]:
    try:
        return compare_rows(rows_of(a), rows_of(b))
    except Exception as exc:  # noqa: BLE001 - a job that wrote nothing readable
        return {"identical": False, "why": f"{type(exc).__name__}: {exc}"}


def run_cluster(photos: Path, files: int, work: Path, env: dict[str, str], local_out: Path) -> dict[str, Any]:
    """The job on a Ray cluster of 1, then 2 nodes on this machine; always torn down."""
    cluster = LocalCluster(str(Path(PY).parent / "ray"), env)
    res: dict[str, Any] = {"runs": [], "notes": []}

    def node_up(start: Any, nodes: int, what: str) -> bool:
        """Start a node and wait until `ray status` lists `nodes`; a note where it did not."""
        try:
            start()
            if not cluster.wait_for_nodes(nodes):
                raise RuntimeError(f"`ray status` did not list {nodes} active node(s) within 60 s")
        except Exception as exc:  # noqa: BLE001
            res["notes"].append(f"{what} did not start: {exc}")
            return False
        return True

    try:
        if not node_up(cluster.start_head, 1, "the head node"):
            return res
        for nodes in (1, 2):
            if nodes == 2 and not node_up(cluster.add_node, 2, "a second node on this machine"):
                break
            out = work / f"out_cluster{nodes}"
            row = measure(f"ray cluster, {nodes} node(s)", batch_cmd(photos, out, "--engine", "ray", "--address",
                                                                      cluster.address), files, env=env,
                          faces=manifest_faces(out), cluster=cluster)
            row.update(nodes=nodes, vs_local=identity(local_out, out) if row["ok"] else None)
            res["runs"].append(row)
    finally:
        res["stopped_pids"] = len(cluster.stop())
        res["log"] = cluster.log
    return res


def report(r: dict[str, Any]) -> str:
    c, runs = r["corpus"], {row["run"]: row for row in r["speed"]}
    naive, predict = runs.get("naive loop"), runs.get("predict (today)")
    local, ray = runs.get("batch local"), runs.get("batch ray (local Ray, start-up included)")
    out = [f"## Labelling a corpus ({r['cpus']} CPUs, load average {r['load_before']} before, {r['load_after']} after)",
           "", f"Corpus: {c['files']:,} files (640x480 JPEG, {c['broken_files']} broken, {c['faces_placed']:,} faces placed, "
           f"{c['no_face']} photos without a face; FER-2013 faces: {'yes' if c['fer_zip'] else 'no, astronaut only'}). "
           "Whole-command wall time, start-up included; peak RSS of the process and all its descendants "
           "(a local Ray's daemons and workers included).", ""]
    out.append(table(["run", "photos", "faces found", "wall s", "photos/s", "faces/s", "x predict", "x naive",
                      "peak RSS (MB)"],
                     [[row["run"], row["files"], row.get("faces"), row["wall_s"], row.get("photos_per_s"),
                       row.get("faces_per_s"), ratio(row, predict), ratio(row, naive), row["peak_mb"]]
                      if row["ok"] else [row["run"], row["files"], f"FAILED ({row['error']})", row["wall_s"],
                                         None, None, None, None, row["peak_mb"]] for row in r["speed"]]))
    out += ["", goal("batch local vs predict", ratio(local, predict), GOAL_VS_PREDICT),
            goal("batch ray vs batch local", ratio(ray, local), GOAL_RAY_VS_LOCAL)]
    if "identity" in r:
        out.append(f"- rows, local vs ray engine: {same(r['identity'])}")
    if "memory" in r:
        m = r["memory"]
        out += ["", "### Memory: the local engine on a corpus of another size", "",
                table(["corpus", "wall s", "photos/s", "peak RSS (MB)"],
                      [[f"{row['files']:,} photos", row["wall_s"], row.get("photos_per_s"), row["peak_mb"]]
                       for row in (m["small"], m["big"])]), "",
                goal("big / small peak RSS", m.get("ratio"), 1 + GOAL_FLAT, at_least=False),
                goal("big corpus peak RSS (MB)", m["big"]["peak_mb"], GOAL_PEAK_MB, at_least=False)]
    if "cluster" in r:
        cl = r["cluster"]
        out += ["", "### A Ray cluster on this machine (`ray start`, 1 CPU a node)", ""]
        if cl["runs"]:
            out.append(table(["nodes", "wall s", "photos/s", "peak RSS, driver (MB)", "driver + cluster processes (MB)",
                              "rows vs local engine"],
                             [[row["nodes"], row["wall_s"], row.get("photos_per_s"), row["peak_mb"],
                               row["peak_with_cluster_mb"],
                               same(row.get("vs_local")) if row["ok"] else f"FAILED ({row['error']})"]
                              for row in cl["runs"]]))
        ok = {row["nodes"]: row for row in cl["runs"] if row["ok"]}
        if 1 in ok and 2 in ok:
            out += ["", f"- 2 nodes vs 1 node: {ratio(ok[2], ok[1]):.2f}x the photos/s"]
        out += [""] + [f"- {note}" for note in cl["notes"]]
        out += ["- The cluster's daemons and workers are not the driver's children: the driver column is the "
                "`batch` process alone; the next one adds the cluster's processes (found by command line), "
                "idle daemons included.",
                f"- Both nodes share this machine's {r['cpus']} cores: this shows Ray's overhead, not a speed-up."]
    if "clips" in r:
        v = r["clips"]
        out += ["", "### Clips (`batch`, local engine, 2 frames analysed per second of video; start-up included)", "",
                table(["clips", "video s", "wall s", "video s per wall s", "rows", "peak RSS (MB)"],
                      [[v["files"], v["video_s"], v["wall_s"], v["video_s"] / v["wall_s"] if v["ok"] else None,
                        v.get("rows"), v["peak_mb"]]])]
    if "stages" in r:
        s = r["stages"]
        cpu = s["decode_ms_per_photo"] + s["detect_ms_per_photo"] + s["faces_per_photo"] * (
            s["crop_ms_per_face"] + s["classify_ms_per_face"])
        out += ["", f"### Per-stage costs, one thread ({s['photos']} photos, {s['faces']} faces, {s['detector']}, "
                f"model {s['model']})", "",
                table(["stage", "ms"], [["decode, per photo", s["decode_ms_per_photo"]],
                                        ["detect (max width 960), per photo", s["detect_ms_per_photo"]],
                                        ["crop, per face", s["crop_ms_per_face"]],
                                        ["classify (batches of 64), per face", s["classify_ms_per_face"]],
                                        ["faces per photo", s["faces_per_photo"]],
                                        ["CPU per photo, all stages", cpu]]), "",
                f"- One busy core: about {1000 / cpu:.1f} photos/s; N cores without overhead: N x that."]
    return "\n".join(out)


# -- main -----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=2000, help="photos in the corpus (default 2000)")
    ap.add_argument("--big", type=int, default=20000, help="photos in the memory corpus (default 20000)")
    ap.add_argument("--clips", type=int, default=3, help="4-second clips (default 3; 0: none)")
    ap.add_argument("--corpus-dir", type=Path, help="make the corpora here and keep them (reused when they fit)")
    ap.add_argument("--skip-big", action="store_true", help="no memory run on the --big corpus")
    ap.add_argument("--skip-cluster", action="store_true", help="no Ray cluster runs")
    ap.add_argument("--skip-ray", action="store_true", help="no Ray runs at all")
    ap.add_argument("--json", type=Path, metavar="FILE", help="write every figure to FILE")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, folder = args.child
        print(json.dumps(child_naive(folder) if kind == "naive" else child_stages(folder)))
        return 0

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="fer-corpus-bench-", dir="/tmp"))  # short: Ray's socket paths
    corpora = args.corpus_dir or work / "corpora"
    env = bench_env(RAY_TMPDIR=str(work))  # this run's Ray files apart from any other Ray on the machine
    r: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": round(os.getloadavg()[0], 2), "args": {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "child"}}
    try:
        photos = corpora / f"photos_{args.photos}"
        r["corpus"] = ensure_corpus(photos, args.photos)
        n = args.photos
        local_out, ray_out = work / "out_local", work / "out_ray"
        r["speed"] = [
            measure("naive loop", [PY, str(Path(__file__)), "--child", "naive", str(photos)], n, env=env,
                    faces=child_faces),
            measure("predict (today)", [PY, "-m", "fer_core", "predict", str(photos), "--csv", str(work / "p.csv"),
                                        "--no-progress"], n, env=env, faces=csv_faces(work / "p.csv")),
            measure("batch local", batch_cmd(photos, local_out), n, env=env, faces=manifest_faces(local_out)),
        ]
        if not args.skip_ray:
            r["speed"].append(measure("batch ray (local Ray, start-up included)",
                                      batch_cmd(photos, ray_out, "--engine", "ray"), n, env=env,
                                      faces=manifest_faces(ray_out)))
            r["identity"] = identity(local_out, ray_out)
        if not args.skip_big:
            big = corpora / f"photos_{args.big}"
            r["corpus_big"] = ensure_corpus(big, args.big)
            small = next(row for row in r["speed"] if row["run"] == "batch local")
            row = measure("batch local, big corpus", batch_cmd(big, work / "out_big"), args.big, env=env)
            r["memory"] = {"small": small, "big": row,
                           "ratio": row["peak_mb"] / small["peak_mb"] if row["ok"] and small["ok"] else None}
            shutil.rmtree(work / "out_big", ignore_errors=True)
        if not (args.skip_cluster or args.skip_ray):
            r["cluster"] = run_cluster(photos, n, work, env, local_out)
        if args.clips:
            clips = corpora / f"clips_{args.clips}"
            facts = ensure_corpus(clips, 0, args.clips)
            row = measure("batch local, clips", batch_cmd(clips, work / "out_clips"), args.clips, env=env)
            if row["ok"]:
                row["rows"] = json.loads((work / "out_clips" / "manifest.json").read_text())["counts"]["rows"]
            r["clips"] = {**row, "video_s": facts["video_seconds"]}
        log("per-stage costs, one thread")
        m = run_measured([PY, str(Path(__file__)), "--child", "stages", str(photos)], cwd=ROOT,
                         env=bench_env(OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1"))
        if m.rc == 0:
            r["stages"] = json.loads(m.stdout.strip().splitlines()[-1])
        else:
            log(f"per-stage costs FAILED (exit {m.rc}):\n{m.tail()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r["load_after"] = round(os.getloadavg()[0], 2)
    r["seconds"] = round(time.perf_counter() - started, 1)
    print(report(r))
    print(f"\n(benchmark run: {r['seconds']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(r, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
