"""`load_dataset(source)`: "demo", a Kaggle zip, its extracted folder, or the Kaggle CSV -> Dataset.

Each source is fingerprinted (zip/CSV: BLAKE2b of the file content; folder: sorted relative paths,
sizes and modification times; demo: its generation parameters). A decoded dataset is cached under
that fingerprint, so the second load is just reading one uncompressed array file.
"""

from __future__ import annotations

import hashlib
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from fer_core.data import cache, csv_source, demo, folder, quality
from fer_core.data.safezip import DEFAULT_LIMITS, ZipLimits, open_zip
from fer_core.data.types import Dataset, LoadReport, Split
from fer_core.errors import DatasetError

Progress = Callable[[int, int], None]

DEMO_SOURCE = "demo"
SOURCES_HELP = (
    "Give 'demo' (the built-in synthetic set), the Kaggle FER-2013 zip (train/ and test/ folders with one "
    "folder per emotion), the same tree extracted to a folder, or the Kaggle fer2013.csv (emotion,pixels,Usage)."
)
_HASH_CHUNK = 1 << 20


def file_fingerprint(path: Path) -> str:
    """BLAKE2b (128-bit) of a file's content, streamed."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _limits_key(limits: ZipLimits) -> str:
    return hashlib.blake2b(repr(limits).encode(), digest_size=4).hexdigest()


def detect_format(path: Path) -> str:
    """'folder' | 'zip' | 'csv' for an existing path; DatasetError for anything else."""
    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise DatasetError(f"{path} is not a file or folder. {SOURCES_HELP}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06") or suffix == ".zip":
        return "zip"
    if suffix == ".csv" or csv_source.looks_like_csv(head):
        return "csv"
    raise DatasetError(f"{path.name} is neither a zip nor a FER-2013 CSV. {SOURCES_HELP}")


def _fer_csv_member(names: list[str], read_head: Callable[[str], bytes]) -> str | None:
    """The one FER-2013 CSV among `names` (top-level-most first), if any."""
    csvs = sorted((n for n in names if n.lower().endswith(".csv")), key=lambda n: (n.count("/"), n))
    for name in csvs:
        if csv_source.looks_like_csv(read_head(name)):
            return name
    return None


def _no_layout_error(what: str, names: list[str]) -> DatasetError:
    tops = sorted({n.split("/", 1)[0] + ("/" if "/" in n else "") for n in names})
    shown = ", ".join(tops[:8]) + (", ..." if len(tops) > 8 else "") if tops else "nothing usable"
    return DatasetError(f"{what} has no train/test class folders (it contains: {shown}). {folder.LAYOUT_HELP}")


def _read_zip(path: Path, report: LoadReport, progress: Progress | None, limits: ZipLimits | None) -> dict[str, Split]:
    with open_zip(path, limits) as zf:
        members = folder.zip_file_members(zf)
        if folder.find_root(members) is None:
            def head(name: str) -> bytes:
                with zf.open(members[name]) as fh:
                    return fh.read(4096)

            csv_name = _fer_csv_member(list(members), head)
            if csv_name is None:
                raise _no_layout_error(f"the zip {path.name}", list(members))
            with zf.open(members[csv_name]) as fh:
                return csv_source.read_csv(fh, report, progress, members[csv_name].file_size)
        return folder.read_zip_tree(zf, report, progress, limits, members)


def _read_folder(path: Path, report: LoadReport, progress: Progress | None,
                 files: list[tuple[str, object]]) -> dict[str, Split]:
    names = [rel for rel, _ in files]
    if folder.find_root(n for n in names if not folder.is_ignored(n)) is None:
        def head(name: str) -> bytes:
            with open(path / name, "rb") as fh:
                return fh.read(4096)

        csv_name = _fer_csv_member(names, head)
        if csv_name is None:
            raise _no_layout_error(f"the folder {path}", names)
        return _read_csv(path / csv_name, report, progress)
    return folder.read_directory_tree(path, report, progress, files)  # type: ignore[arg-type]


def _read_csv(path: Path, report: LoadReport, progress: Progress | None) -> dict[str, Split]:
    try:
        with open(path, "rb") as fh:
            return csv_source.read_csv(fh, report, progress, path.stat().st_size)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None


def _finish(name: str, splits: dict[str, Split], fingerprint: str, synthetic: bool, report: LoadReport,
            started: float) -> Dataset:
    if not splits or sum(len(s) for s in splits.values()) == 0:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(report.skipped_by_reason.items(), key=lambda kv: -kv[1])[:5])
        raise DatasetError(
            f"no usable images in {name}" + (f" ({report.total_skipped} items skipped: {reasons})" if reasons else "")
            + f". {SOURCES_HELP}"
        )
    quality.analyse(splits, report)
    report.seconds = round(time.perf_counter() - started, 3)
    return Dataset(name=name, splits=splits, fingerprint=fingerprint, synthetic=synthetic, report=report)


def _cached(fmt: str, fingerprint: str, source: str, name: str, use_cache: bool,
            progress: Progress | None) -> Dataset | None:
    if not use_cache:
        return None
    ds = cache.load(cache.cache_path(fmt, fingerprint), fingerprint)
    if ds is None:
        return None
    ds.name = name
    ds.report.source = source
    ds.report.from_cache = True
    if progress:
        n = ds.num_images
        progress(n, n)
    return ds


def load_demo(
    *,
    seed: int = demo.DEFAULT_SEED,
    train_per_class: int = demo.DEFAULT_TRAIN_PER_CLASS,
    test_per_class: int = demo.DEFAULT_TEST_PER_CLASS,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> Dataset:
    """The built-in synthetic demo set (Dataset.synthetic is True): train 7 x 300, test 7 x 80 by default."""
    fingerprint = demo.demo_fingerprint(seed, train_per_class, test_per_class)
    ds = _cached("demo", fingerprint, DEMO_SOURCE, demo.DEMO_NAME, use_cache, progress)
    if ds is not None:
        return ds
    started = time.perf_counter()
    splits = demo.generate(seed, train_per_class, test_per_class, progress)
    report = LoadReport(source=DEMO_SOURCE, format="demo")
    ds = _finish(demo.DEMO_NAME, splits, fingerprint, True, report, started)
    if use_cache:
        cache.save(ds, cache.cache_path("demo", fingerprint))
    return ds


def load_dataset(
    source: str | Path,
    *,
    use_cache: bool = True,
    progress: Progress | None = None,
    limits: ZipLimits | None = None,
) -> Dataset:
    """Load "demo", a Kaggle FER-2013 zip, its extracted folder, or the Kaggle CSV.

    Labels are FER_LABELS indices. Unusable files/rows are skipped and counted in `dataset.report`;
    DatasetError (UnsafeArchiveError for unsafe zips) when the source cannot be read at all.
    `progress(done, total)` is called while decoding (images, or bytes for a CSV).
    `limits` overrides the zip safety limits (safezip.DEFAULT_LIMITS).
    """
    if str(source).strip().lower() == DEMO_SOURCE and not Path(source).exists():
        return load_demo(use_cache=use_cache, progress=progress)
    if not str(source).strip():
        raise DatasetError(f"no dataset source given. {SOURCES_HELP}")
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset source {str(source)!r} does not exist. {SOURCES_HELP}")
    path = path.resolve()
    fmt = detect_format(path)
    started = time.perf_counter()
    files: list = []
    try:
        if fmt == "folder":
            files = folder.walk_files(path)
            fingerprint = folder.directory_fingerprint(files)
        else:
            fingerprint = file_fingerprint(path)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    name = path.name
    # A zip's cache entry is only valid for the safety limits it was checked with.
    key = fmt if fmt != "zip" or limits in (None, DEFAULT_LIMITS) else f"zip-{_limits_key(limits)}"
    ds = _cached(key, fingerprint, str(path), name, use_cache, progress)
    if ds is not None:
        return ds
    report = LoadReport(source=str(path), format=fmt)
    if fmt == "zip":
        try:
            splits = _read_zip(path, report, progress, limits)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # damaged central directory or member data
            raise DatasetError(f"cannot read the zip {path.name}: it is damaged ({exc})") from None
        except (OSError, NotImplementedError, RuntimeError) as exc:  # I/O errors, unsupported compression, password
            raise DatasetError(f"cannot read the zip {path.name}: {exc}") from None
    elif fmt == "folder":
        try:
            splits = _read_folder(path, report, progress, files)
        except OSError as exc:  # e.g. a CSV in the folder that is a link to something unreadable
            raise DatasetError(f"cannot read the folder {path.name}: {exc.strerror or exc}") from None
    else:
        splits = _read_csv(path, report, progress)
    ds = _finish(name, splits, fingerprint, False, report, started)
    if use_cache:
        cache.save(ds, cache.cache_path(key, fingerprint))
    return ds
