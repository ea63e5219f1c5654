"""How benchmarks/corpus.py runs and measures a command: as a user runs it, in a process of its own
(wall time start-up included), with the peak of the summed RSS of the process and all its
descendants sampled every 0.1 s from /proc (no psutil); a two-node Ray cluster on this machine,
started with `ray start` and stopped by process id; two corpus jobs' rows compared.

Linux only (/proc). A local Ray (`ray.init()` in the command) starts its daemons and workers as
the command's children, so they count in its peak; a cluster's daemons are not its children:
they are found by their command lines (the cluster's temp dir, its GCS port) and sampled apart.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC = Path("/proc")
SAMPLE_S = 0.1


def _children_map() -> dict[int, list[int]]:
    """ppid -> pids, from every /proc/<pid>/stat."""
    kids: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])  # fields after "(comm)": state, ppid, ...
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def descendants(roots: Iterable[int]) -> set[int]:
    """The roots and every process below them (those alive now)."""
    kids = _children_map()
    seen: set[int] = set()
    todo = [r for r in roots if (PROC / str(r)).exists()]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += kids.get(pid, [])
    return seen


def rss_kb(pid: int) -> int:
    """VmRSS of a process in kB (0 when it is gone or a zombie)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_rss_mb(pids: Iterable[int]) -> float:
    return sum(rss_kb(p) for p in pids) / 1024


class PeakSampler(threading.Thread):
    """Samples, every 0.1 s, the summed RSS of `roots()`'s process trees and of `extra()`'s, keeping
    the peak of the first and of both together."""

    def __init__(self, roots: Callable[[], Iterable[int]], extra: Callable[[], Iterable[int]] | None = None):
        super().__init__(daemon=True)
        self.roots, self.extra = roots, extra
        self.peak_mb = self.peak_with_extra_mb = 0.0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        own = descendants(self.roots())
        mb = tree_rss_mb(own)
        extra = descendants(self.extra()) - own if self.extra else set()
        self.peak_mb = max(self.peak_mb, mb)
        self.peak_with_extra_mb = max(self.peak_with_extra_mb, mb + tree_rss_mb(extra))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(SAMPLE_S)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class Measured:
    """One command run: exit status, wall seconds, peak RSS of its tree (and with the cluster's)."""

    cmd: list[str]
    rc: int
    wall_s: float
    peak_mb: float
    peak_with_cluster_mb: float | None = None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    note: str = ""  # what `on_timeout` found before the command was killed

    def tail(self, n: int = 15) -> str:
        return "\n".join((self.stdout + self.stderr).strip().splitlines()[-n:])


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every measured command: the user's, Ray's token auth off, TensorFlow quiet."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.update(extra)
    return env


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 cluster: Callable[[], Iterable[int]] | None = None, timeout_s: float | None = None,
                 on_timeout: Callable[[], str] | None = None) -> Measured:
    """Run `cmd` to its end; its wall time and the peak RSS of its process tree (`cluster`: the root
    pids of a Ray cluster's processes, sampled as well). Past `timeout_s` it is killed (its tree:
    SIGTERM, then SIGKILL), after `on_timeout()` has said what it can (e.g. `ray status`)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env or bench_env(), cwd=cwd)
        sampler = PeakSampler(lambda: [proc.pid], cluster)
        sampler.start()
        timed_out, note = False, ""
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            note = on_timeout() if on_timeout else ""
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for pid in descendants([proc.pid]):
                    _signal(pid, sig)
                try:
                    rc = proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    rc = -9
        finally:
            wall = time.perf_counter() - t0
            sampler.stop()
        out.seek(0)
        err.seek(0)
        return Measured(cmd, rc, wall, sampler.peak_mb, sampler.peak_with_extra_mb if cluster else None,
                        out.read(), err.read(), timed_out, note)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    """A Ray cluster of nodes on this machine, each `--num-cpus 1`, in a temp dir of its own.

    Stopped by process id (`stop`): `ray stop --force` would kill every Ray process of the user on the
    machine, another job's included."""

    ray_bin: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    temp_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="fer-ray-", dir="/tmp"))
    nodes: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, args: list[str]) -> None:
        ports = ["--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
                 "--dashboard-agent-grpc-port", str(free_port()), "--runtime-env-agent-port", str(free_port()),
                 "--metrics-export-port", str(free_port())]
        cmd = [self.ray_bin, "start", "--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats",
               "--temp-dir", self.temp_dir, *ports, *args]
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=180)
        self.log.append(f"$ {' '.join(cmd)}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
        if done.returncode != 0:
            raise RuntimeError(f"`ray start` exited {done.returncode}: {(done.stderr or done.stdout).strip()[-800:]}")
        self.nodes += 1

    def start_head(self) -> None:
        self._start(["--head", "--port", str(self.port), "--include-dashboard=false"])

    def add_node(self) -> None:
        self._start(["--address", self.address])

    def roots(self) -> list[int]:
        """The cluster's daemons, by their command lines (their workers are their children)."""
        # Ray names the node by its own idea of the host's IP (not always 127.0.0.1): match the GCS port.
        mark = re.compile(rf"{re.escape(self.temp_dir)}|:{self.port}(?!\d)|gcs_server_port={self.port}(?!\d)")
        me, found = os.getpid(), []
        for entry in PROC.iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "ray" in cmdline and mark.search(cmdline) and " start " not in cmdline and "fer_core" not in cmdline:
                found.append(int(entry.name))
        return found

    def raylets(self) -> int:
        """Raylets alive (one per node)."""
        n = 0
        for pid in self.roots():
            try:
                n += (PROC / str(pid) / "comm").read_text().strip() == "raylet"
            except OSError:
                pass
        return n

    def status(self) -> str:
        """`ray status -v` of the cluster (its output, or why there is none)."""
        try:
            st = subprocess.run([self.ray_bin, "status", "-v", "--address", self.address], env=self.env,
                                capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return "`ray status` did not answer within 60 s"
        return st.stdout if st.returncode == 0 else f"`ray status` exited {st.returncode}: {st.stderr[-800:]}"

    def wait_for_nodes(self, n: int, timeout_s: float = 60.0) -> bool:
        """Until `n` nodes are alive in the cluster (asked with `ray status`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if _active_nodes(self.status()) >= n:
                return True
            time.sleep(1.0)
        return False

    def stop(self, grace_s: float = 5.0) -> list[int]:
        """SIGTERM to the cluster's processes (found again each round: a worker whose raylet is gone is
        no longer below it, so every process signalled once is kept, by pid and start time), SIGKILL
        to those left after `grace_s`; the temp dir removed. The pids signalled."""
        signalled: dict[int, str] = {}
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline + 5.0:
            for pid in descendants(self.roots()):
                signalled.setdefault(pid, _start_time(pid))
            alive = [p for p, t in signalled.items() if rss_kb(p) and _start_time(p) == t]
            if not alive:
                break
            sig = signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL
            for pid in alive:
                _signal(pid, sig)
            time.sleep(0.5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.nodes = 0
        return sorted(signalled)


def _start_time(pid: int) -> str:
    """A process's start time (clock ticks since boot), to tell it from a later one with its pid."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2:].split()[19]


def _active_nodes(status: str) -> int:
    """Nodes listed under "Active:" in `ray status` output."""
    lines = status.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Active:")
    except StopIteration:
        return 0
    n = 0
    for line in lines[start + 1:]:
        if not line.strip().startswith("1 node_"):
            break
        n += 1
    return n


# -- rows -------------------------------------------------------------------------------------------

KEY_COLUMNS = ["item", "source", "kind", "status", "frame", "face", "x", "y", "w", "h", "label"]
IDENTICAL_BELOW = 1e-5


def compare_rows(a: Any, b: Any) -> dict[str, Any]:
    """Two jobs' rows (JobFolder.read_rows): the same items, sources, statuses, boxes and labels, and the
    largest difference of a probability (identical: all the same and that under 1e-5)."""
    import numpy as np

    from fer_core.corpus.rows import PROB_COLUMNS

    out: dict[str, Any] = {"rows": [len(a), len(b)], "differing_columns": [], "max_prob_diff": None}
    if len(a) != len(b):
        out.update(identical=False, why=f"{len(a)} rows vs {len(b)}")
        return out
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    out["differing_columns"] = [c for c in KEY_COLUMNS if not a[c].equals(b[c])]
    pa_, pb = a[PROB_COLUMNS].to_numpy(np.float64), b[PROB_COLUMNS].to_numpy(np.float64)
    if not np.array_equal(np.isnan(pa_), np.isnan(pb)):
        out["differing_columns"].append("probabilities (missing in one)")
    diff = np.abs(pa_ - pb)
    out["max_prob_diff"] = float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0
    out["identical"] = not out["differing_columns"] and out["max_prob_diff"] < IDENTICAL_BELOW
    if not out["identical"]:
        out["why"] = (f"columns differ: {', '.join(out['differing_columns'])}" if out["differing_columns"]
                      else f"probabilities differ by up to {out['max_prob_diff']:.1e}")
    return out


# -- children (`--child KIND DIR`) --------------------------------------------------------------------

def _photo_files(folder: str | Path) -> list[Path]:
    from fer_core.inference.sources import IMAGE_SUFFIXES

    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _classifier(warm_up_to: int = 8) -> Any:
    from fer_core.inference.classifier import EmotionClassifier
    from fer_core.store.default_model import resolve_run
    from fer_core.store.runs import ModelStore

    return EmotionClassifier.from_store(ModelStore(), resolve_run(ModelStore(), None).run_id, warm_up_to=warm_up_to)


def child_naive(folder: str) -> dict[str, Any]:
    """What a user writes with the peers (the `fer` package's `detect_emotions` does this): a file at a
    time, detect, then one Keras `model.predict` per face (the same model, crop and preprocessing)."""
    from fer_core.errors import ImageError
    from fer_core.inference.crops import DEFAULT_MARGIN, crop_face
    from fer_core.inference.faces import make_detector
    from fer_core.inference.images import load_image_file

    classifier, detector = _classifier(), make_detector("auto", max_width=960)
    files = _photo_files(folder)
    faces = failed = 0
    for path in files:
        try:
            image = load_image_file(path)
        except ImageError:
            failed += 1
            continue
        for box in detector.detect(image):
            x = classifier.prepare([crop_face(image, box, DEFAULT_MARGIN, True)])
            classifier.model.predict(x, verbose=0)
            faces += 1
    return {"files": len(files), "failed": failed, "faces": faces}


def child_stages(folder: str, n: int = 100) -> dict[str, Any]:
    """ms per photo to decode and to detect, ms per face to crop and to classify (batches of 64), one thread."""
    import cv2
    import numpy as np
    import tensorflow as tf

    cv2.setNumThreads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from fer_core.errors import ImageError
    from fer_core.inference.crops import DEFAULT_MARGIN, crop_face
    from fer_core.inference.faces import make_detector
    from fer_core.inference.images import load_image_file

    classifier, detector = _classifier(warm_up_to=64), make_detector("auto", max_width=960)
    images, t_decode = [], 0.0
    for path in _photo_files(folder):
        if len(images) == n:
            break
        t = time.perf_counter()
        try:
            images.append(load_image_file(path))
        except ImageError:
            continue
        t_decode += time.perf_counter() - t
    detector.detect(images[0])  # warm-up
    t_detect = t_crop = 0.0
    crops: list[Any] = []
    for image in images:
        t = time.perf_counter()
        boxes = detector.detect(image)
        t2 = time.perf_counter()
        crops += [crop_face(image, b, DEFAULT_MARGIN, True) for b in boxes]
        t_detect, t_crop = t_detect + t2 - t, t_crop + time.perf_counter() - t2
    passes = []
    for _ in range(3):
        t = time.perf_counter()
        for i in range(0, len(crops), 64):
            classifier.predict_proba(crops[i:i + 64])
        passes.append(time.perf_counter() - t)
    k, m = len(images), max(1, len(crops))
    return {"photos": k, "faces": len(crops), "faces_per_photo": len(crops) / k,
            "decode_ms_per_photo": 1000 * t_decode / k, "detect_ms_per_photo": 1000 * t_detect / k,
            "crop_ms_per_face": 1000 * t_crop / m, "classify_ms_per_face": 1000 * float(np.median(passes)) / m,
            "detector": type(detector).__name__, "model": classifier.name,
            "tf_threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                           tf.config.threading.get_inter_op_parallelism_threads()]}


# -- tables ---------------------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows])


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if not a or not b or not a.get("ok") or not b.get("ok"):
        return None
    return a["photos_per_s"] / b["photos_per_s"]


def goal(name: str, value: float | None, target: float, at_least: bool = True) -> str:
    if value is None:
        return f"- {name}: not measured"
    met = value >= target if at_least else value <= target
    return f"- {name}: {value:.2f} (goal {'>=' if at_least else '<='} {target:g}): {'met' if met else 'NOT met'}"


def same(c: dict[str, Any] | None) -> str:
    if not c:
        return "-"
    if c.get("identical"):
        return f"identical (max prob diff {c['max_prob_diff']:.1e})"
    return f"NOT identical: {c.get('why')}"
