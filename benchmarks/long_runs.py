"""Opening runs of a hundred thousand and a million steps: time, memory, bytes on disk, redraw.

    python benchmarks/long_runs.py [--steps 100000 1000000] [--before-max 100000] [--keep DIR]
                                   [--no-redraw] [--json FILE]

A short real run is trained headless first (Trainer + record_run, the default model's shape: 8
presentations x 4 angles, 4 primary + 4 ghost experts, at a small width so that it takes seconds),
standard then geometric, with evaluations. Its batches, perturbed (each value scaled by a random
factor near 1, so no two lines are alike), become 2,000 template batches; a synthetic run of N
steps repeats them with increasing step, tokens, epoch and clock, plus an evaluation every 100
steps and the real run's mode change. Each N is written twice:
- `long-N`: the lines as the log wrote them before the compact form (`json.dumps(to_json())`);
- `compact-N`: the compact lines (`batch_line`), with the columns cached as they are written by the
  same `SegmentWriter` the RunLog uses.

Printed, `name=value`, per N (each open in a fresh process, memory after `gc.collect()`):
- bytes_per_step_long, bytes_per_step_compact: metrics.jsonl size / N (target compact <= 1,450: a geometric line carries the 8 x 8 hidden similarity);
- before_open_s, before_rss_added_mb, before_bytes_per_step: the loader before columns (the
  typed records of `read_typed_records`, plus its bad-line count), on `long-N`; only up to
  --before-max steps (a million would need about 6 GB);
- first_open_long_s / _rss_added_mb: `load_run` on `long-N` with no cache (it parses the JSON, and
  writes the cache as it goes); reopen_long_s: the same run again, from that cache;
- open_compact_s, open_compact_rss_added_mb, open_compact_bytes_per_step (RSS added / N),
  open_compact_tracemalloc_mb and _peak_mb (held after the open, and the most at any time during
  it, in a second process with tracemalloc on): `load_run` on `compact-N`, as the app opens a run
  it (or geogui-train) recorded (target at 1e6: <= 5 s and <= 400 MB);
- parse_compact_json_s: the same lines parsed with the cache switched off (the worst case);
- redraw_full_zoom_out_ms_<tab>: each tab of the app's PlotBoard, offscreen at 1600 x 1000, fed the
  loaded run and redrawn at full zoom-out (reduced to pixels and painted; median of 5).

--keep DIR keeps (and reuses) the synthetic runs there; by default they go to a temporary
directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
TEMPLATES = 2000
EVAL_EVERY = 100
SOURCE_SETTINGS = {
    "run": {"steps": 40, "batch_size": 4, "eval_interval": 10, "eval_batches": 1, "warmup_steps": 2,
            "mode": "standard"},
    "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": 32, "expert_hidden": 32},
    "device": {"device": "cpu"},
}
SWITCH_AT = 10  # the source run turns geometric after this step


def rss_mb() -> float:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # macOS: only the peak is offered
        return peak_mb()


def peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


# -- the runs -----------------------------------------------------------------------------------------
def train_source(out: Path) -> Path:
    from geogui.engine.metrics import BatchRecord
    from geogui.rundir.recorder import record_run
    from geogui.rundir.runlog import RunLog
    from geogui.engine.trainer import Trainer
    from geogui.settings import Settings

    settings = Settings.model_validate(SOURCE_SETTINGS)
    trainer = Trainer(settings)
    for event in record_run(trainer, RunLog(out, settings)):
        if isinstance(event, BatchRecord) and event.step == SWITCH_AT:
            trainer.request_mode("geometric")
    return out


SENTINELS = {"step": 987654321, "tokens_seen": 876543219, "wall_time_s": 123456.654321, "epoch": 0.123456789}


def templates(source: Path, seed: int = 0) -> list:
    """TEMPLATES perturbed copies of the source run's batches."""
    import dataclasses

    import numpy as np

    from geogui.engine.metrics import BatchRecord
    from geogui.rundir.reader import read_records

    batches = [r for r in read_records(source) if isinstance(r, BatchRecord)]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(TEMPLATES):
        base = batches[SWITCH_AT + i % (len(batches) - SWITCH_AT)]  # geometric: the widest lines
        scale = lambda v: float(np.float32(v * rng.uniform(0.9, 1.1)))  # noqa: E731
        changes = {name: scale(getattr(base, name)) for name in (
            "loss", "task_loss", "aux_loss", "penalty", "orthogonality", "specialization", "saturation")}
        changes.update({name: getattr(base, name) * rng.uniform(0.9, 1.1) for name in (
            "batch_time_s", "data_time_s", "lr_model", "lr_rotation", "tokens_per_s", "memory_bytes")})
        load = base.expert_load * rng.uniform(0.8, 1.2, base.expert_load.shape)
        out.append(dataclasses.replace(
            base, **changes, **SENTINELS,
            rotation_angles=(base.rotation_angles * rng.uniform(0.9, 1.1, base.rotation_angles.shape))
            .astype(np.float32).astype(np.float64),
            expert_load=load / load.sum(), ghost_activation=rng.uniform(0, 1, base.ghost_activation.shape)))
    return out


def split(line: str, form: str) -> list[str]:
    """`line` cut around the sentinel values, to be joined with each step's own."""
    parts = [line]
    for name in ("step", "epoch", "tokens_seen", "wall_time_s"):
        text = _number(SENTINELS[name], name, form)
        head, sep, tail = parts[-1].partition(text)
        assert sep, (name, text)
        parts[-1:] = [head, tail]
    return parts


def _number(value: float, name: str, form: str) -> str:
    """How a line of `form` writes `value` of field `name` (see metrics.batch_line)."""
    import numpy as np

    if form == "long" or name in ("step", "tokens_seen"):
        return repr(value)
    return repr(round(value, 6)) if name == "wall_time_s" else str(np.float32(value))


def build(source: Path, out: Path, steps: int, form: str) -> None:
    """A synthetic run of `steps` batches in `form` ("long" or "compact")."""
    from geogui.engine.metrics import EvalRecord, ModeChange
    from geogui.engine.log_lines import batch_line
    from geogui.rundir.layout import CACHE_DIR, METRICS_FILE
    from geogui.rundir.segments import SegmentWriter

    if (out / "complete").exists():
        return
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    meta = json.loads((source / "meta.json").read_text())
    meta.update(name=out.name, steps_done=steps, status="finished", total_steps=steps)
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    encode = batch_line if form == "compact" else (lambda record: json.dumps(record.to_json()))
    pieces = [split(encode(record), form) for record in templates(source)]
    switch = max(1, steps // 20)
    cache = SegmentWriter(out, 0) if form == "compact" else None
    tokens_per_step, wall_per_step = 4 * 32, 0.021
    with open(out / METRICS_FILE, "w", encoding="utf-8", newline="\n") as handle:
        buffer = []
        for step in range(1, steps + 1):
            lines = []
            if step == switch:
                lines.append(json.dumps(ModeChange(step, "geometric", 0.001, "standard", 0.001).to_json()))
            p = pieces[step % TEMPLATES]
            tokens = step * tokens_per_step
            wall = step * wall_per_step
            lines.append("".join((p[0], str(step), p[1], _number(tokens / 2e6, "epoch", form), p[2], str(tokens),
                                  p[3], _number(wall, "wall_time_s", form), p[4])))
            if step % EVAL_EVERY == 0:
                loss = 3.0 + math.sin(step)
                lines.append(json.dumps(EvalRecord(step, loss, math.exp(loss)).to_json()))
            buffer.append("\n".join(lines) + "\n")
            if len(buffer) >= 4096 or step == steps:
                handle.write("".join(buffer))
                handle.flush()  # as the RunLog does: the line is in the file before the cache sees it
                if cache is not None:
                    for text in buffer:
                        cache.add(text.encode())
                buffer.clear()
    if cache is not None:
        cache.flush()
        assert (out / CACHE_DIR).is_dir()
    (out / "complete").write_text("")


# -- children: one measurement each, in a fresh process ------------------------------------------------
def child_open(kind: str, run: str, trace: bool) -> dict:
    import tracemalloc

    from geogui.gui.plotdata import run_source
    from geogui.rundir import reader

    path = Path(run)
    gc.collect()
    rss0 = rss_mb()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    if kind == "before":
        held = reader.read_records(path), reader.read_lines(path, rewind=False).skipped_lines, reader.torn_tail(path)
        rows = sum(1 for r in held[0] if type(r).__name__ == "BatchRecord")
    elif kind == "load":
        held = run_source.load_run(path)
        rows = len(held.columns)
    else:
        held = reader.read_columns(path, cache=False)
        rows = len(held)
    seconds = time.perf_counter() - start
    out = {"open_s": seconds, "rows": rows}
    if trace:
        current, peak = tracemalloc.get_traced_memory()
        out.update(tracemalloc_mb=current / 2**20, tracemalloc_peak_mb=peak / 2**20)
    gc.collect()
    out["rss_added_mb"] = rss_mb() - rss0
    del held
    return out


def feed_board(board, run) -> None:
    """The loaded run into the PlotBoard. The hook for the plot store: a board that takes columns
    (`load_columns`) gets them; otherwise its series is the run's, built as the app builds it."""
    board.start_run(run.shape.presentations, run.shape.rotation_dimensions, run.shape.expert_names)
    if hasattr(board, "load_columns"):
        board.load_columns(run.columns)
    else:
        board.series = run.series(board.smoothing.value())


def child_redraw(run: str) -> dict:
    from PySide6.QtWidgets import QApplication

    from geogui.gui.plots.board import PlotBoard
    from geogui.gui.plotdata.run_source import load_run

    app = QApplication([])
    board = PlotBoard()
    board.timer.stop()
    board.resize(1600, 1000)
    board.show()
    app.processEvents()
    loaded = load_run(Path(run))
    start = time.perf_counter()
    feed_board(board, loaded)
    out = {"feed_s": time.perf_counter() - start}
    for index in range(board.tabs.count()):
        board.tabs.setCurrentIndex(index)
        app.processEvents()
        viewport = board.plot_tabs[index].widget.viewport()
        times = []
        for _ in range(5):
            begin = time.perf_counter()
            board.redraw_tab(index)
            viewport.repaint()  # a synchronous paint: the cost the user waits for
            times.append(time.perf_counter() - begin)
            app.processEvents()
        name = board.tabs.tabText(index).lower().replace(" ", "_").replace("&", "")
        out[f"redraw_full_zoom_out_ms_{name}"] = 1000 * statistics.median(times)
    return out


def run_child(*args: str) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, str(HERE), "--child", *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the parent ----------------------------------------------------------------------------------------
def measure(root: Path, source: Path, steps: int, before_max: int, redraw: bool) -> dict[str, float]:
    from geogui.rundir.layout import CACHE_DIR

    figures: dict[str, float] = {}
    long_run, compact_run = root / f"long-{steps}", root / f"compact-{steps}"
    for run, form in ((long_run, "long"), (compact_run, "compact")):
        start = time.perf_counter()
        build(source, run, steps, form)
        print(f"# built {run.name} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        figures[f"bytes_per_step_{form}"] = (run / "metrics.jsonl").stat().st_size / steps
    if steps <= before_max:
        before = run_child("open", "before", str(long_run))
        figures.update(before_open_s=before["open_s"], before_rss_added_mb=before["rss_added_mb"],
                       before_bytes_per_step=before["rss_added_mb"] * 2**20 / steps)
    shutil.rmtree(long_run / CACHE_DIR, ignore_errors=True)
    first = run_child("open", "load", str(long_run))
    figures.update(first_open_long_s=first["open_s"], first_open_long_rss_added_mb=first["rss_added_mb"])
    figures["reopen_long_s"] = run_child("open", "load", str(long_run))["open_s"]
    compact = run_child("open", "load", str(compact_run))
    assert compact["rows"] == steps, compact
    figures.update(open_compact_s=compact["open_s"], open_compact_rss_added_mb=compact["rss_added_mb"],
                   open_compact_bytes_per_step=compact["rss_added_mb"] * 2**20 / steps)
    traced = run_child("open", "load", str(compact_run), "trace")
    figures.update(open_compact_tracemalloc_mb=traced["tracemalloc_mb"],
                   open_compact_tracemalloc_peak_mb=traced["tracemalloc_peak_mb"])
    figures["parse_compact_json_s"] = run_child("open", "json", str(compact_run))["open_s"]
    if redraw:
        figures.update(run_child("redraw", str(compact_run)))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--before-max", type=int, default=100_000, metavar="N",
                        help="measure the loader before columns only up to N steps (default 100000)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep (and reuse) the synthetic runs in DIR")
    parser.add_argument("--no-redraw", action="store_true", help="skip the PlotBoard redraw")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        result = child_redraw(rest[0]) if kind == "redraw" else child_open(rest[0], rest[1], "trace" in rest[2:])
        print(json.dumps(result))
        return 0

    root = args.keep or Path(tempfile.mkdtemp(prefix="geogui-long-runs-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        source = root / "source"
        if not (source / "metrics.jsonl").exists():
            train_source(source)
        results = {}
        for steps in args.steps:
            figures = measure(root, source, steps, args.before_max, not args.no_redraw)
            results[steps] = figures
            for name, value in figures.items():
                print(f"{name}_{steps}={value:.4g}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
