"""metrics.cache/: the columns of byte ranges of metrics.jsonl, so that a long run reopens without
parsing its JSON again (JSON cannot be parsed much faster than ~100-300 MB/s).

Each segment (`<start>-<end>.npz`) holds the columns of one range: the RunLog writes one every few
megabytes as it logs (`SegmentWriter`), and a reader writes one for each large chunk it had to
parse. A segment is used only when it starts where the previous one ended (or right after a
newline: what a crashed writer had not cached is parsed again) and the bytes at both of its ends
still match metrics.jsonl; anything else is ignored (and removed), and the JSON is parsed again.
metrics.jsonl stays the record: deleting the cache loses nothing.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

import numpy as np

from geogui.rundir.columns import MATRIX_FIELDS, SCALAR_FIELDS
from geogui.rundir.layout import CACHE_DIR, METRICS_FILE
from geogui.rundir.lines import Part, parse_part

CACHE_VERSION = 3  # bump when what a segment holds, or how lines are read, changes
SEGMENT_BYTES = 4 << 20  # a writer caches this much of the log per segment
_SAMPLE = 256  # bytes at each end of a segment's range that must still match metrics.jsonl
Segment = tuple[int, int, Path]  # start, end, file


def _crc_at(handle, start: int, end: int) -> int:
    handle.seek(start)
    return zlib.crc32(handle.read(end - start))


def _samples(handle, start: int, end: int) -> tuple[int, int]:
    return (_crc_at(handle, start, min(start + _SAMPLE, end)), _crc_at(handle, max(end - _SAMPLE, start), end))


def _segment_name(start: int, end: int) -> str:
    return f"{start:015d}-{end:015d}.npz"


def _segments(cache: Path) -> list[Segment]:
    out = []
    try:
        names = os.listdir(cache)
    except OSError:
        return []
    for name in names:
        stem, dot, suffix = name.partition(".")
        first, dash, second = stem.partition("-")
        if suffix == "npz" and dash and first.isdigit() and second.isdigit() and int(second) > int(first):
            out.append((int(first), int(second), cache / name))
    return sorted(out)


def _storable(array: np.ndarray) -> np.ndarray:
    # A float64 column whose values are all float32 values is stored in half the space.
    if array.dtype == np.float64:
        narrow = array.astype(np.float32)
        if np.array_equal(narrow.astype(np.float64), array, equal_nan=True):
            return narrow
    return array


def write_segment(run_dir: Path, part: Part, handle=None) -> bool:
    """Cache `part` in the run's metrics.cache/ (atomically); False when it could not be written.
    `handle` is metrics.jsonl open for binary reading, if the caller has one."""
    cache = Path(run_dir) / CACHE_DIR
    own = handle is None
    try:
        if own:
            handle = open(Path(run_dir) / METRICS_FILE, "rb")
        try:
            head, tail = _samples(handle, part.start, part.end)
        finally:
            if own:
                handle.close()
        info = {"version": CACHE_VERSION, "start": part.start, "end": part.end, "head": head, "tail": tail,
                "rows": part.rows, "modes": part.modes, "entries": part.entries, "skipped": part.skipped}
        cache.mkdir(exist_ok=True)
        target = cache / _segment_name(part.start, part.end)
        tmp = cache / f".{target.name}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as out:
                np.savez(out, info=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8),
                         **{name: _storable(array) for name, array in part.arrays.items()})
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except (OSError, ValueError):
        return False
    return True


def load_segment(path: Path, start: int, end: int, handle) -> Part | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            info = json.loads(npz["info"].tobytes())
            if (info.get("version") != CACHE_VERSION or info.get("start") != start or info.get("end") != end
                    or [info.get("head"), info.get("tail")] != list(_samples(handle, start, end))):
                return None
            arrays = {}
            for name in (*SCALAR_FIELDS, "mode", *MATRIX_FIELDS):
                array = npz[name]
                arrays[name] = array.astype(np.float64) if name in SCALAR_FIELDS else array
            if any(len(array) != info["rows"] for array in arrays.values()):
                return None
            return Part(start, end, arrays, list(info["modes"]), info["entries"], int(info["skipped"]))
    except (OSError, ValueError, KeyError, TypeError, zlib.error, EOFError):
        return None


def cached_plan(run_dir: Path, size: int, handle) -> tuple[list[Segment], list[Path]]:
    """The segments to read, in order, and the ones left over (covered by others, or stale), which
    may be removed. Gaps are allowed where a segment starts right after a newline: what a writer
    had not cached when it crashed is parsed, and the cache of the resumed log still counts."""
    segments = [segment for segment in _segments(Path(run_dir) / CACHE_DIR) if segment[1] <= size]
    plan: list[Segment] = []
    offset = 0
    while True:
        here = [segment for segment in segments if segment[0] == offset]
        if not here:
            later = sorted((s for s in segments if s[0] > offset), key=lambda s: (s[0], -s[1]))
            here = [s for s in later[:8] if _after_newline(handle, s[0])][:1]
        if not here:
            break
        segment = max(here, key=lambda s: s[1])
        plan.append(segment)
        offset = segment[1]
    chosen = {segment[2] for segment in plan}
    # A segment past the size read may have been written since: it is left alone.
    return plan, [path for _, end, path in segments if path not in chosen and end <= offset]


def _after_newline(handle, offset: int) -> bool:
    handle.seek(offset - 1)
    return handle.read(1) == b"\n"




def remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


class SegmentWriter:
    """The RunLog's side of the cache: the lines it appends, cached a few megabytes at a time.

    `start` is where in metrics.jsonl the next line will begin (a line boundary). Failing to write
    the cache never fails the run: it is only a cache, and the writer then stops trying."""

    def __init__(self, run_dir: Path, start: int, segment_bytes: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.start = start
        self.segment_bytes = SEGMENT_BYTES if segment_bytes is None else segment_bytes
        self._lines: list[bytes] = []
        self._size = 0
        self.enabled = True

    def add(self, line: bytes) -> None:
        if not self.enabled:
            return
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.segment_bytes:
            self.flush()

    def flush(self) -> None:
        if not self.enabled or not self._lines:
            return
        data = b"".join(self._lines)
        self._lines, self._size = [], 0
        try:
            part = parse_part(data, self.start)
        except Exception:  # noqa: BLE001 - a cache must never stop training
            self.enabled = False
            return
        self.start += len(data)
        if not write_segment(self.run_dir, part):
            self.enabled = False

    def drop(self) -> None:
        self._lines, self._size, self.enabled = [], 0, False

