"""What the per-layer routing numbers cost the exports: CSV, summary and TensorBoard, timed on a run
with them and on the same run without them.

    python benchmarks/exports.py [--steps 20000] [--no-tensorboard]

The run is the export tests' synthetic one (tests/rundir/synthetic_run.py: the default model's shape,
4 layers x 8 experts, 8 presentations; standard, geometric, geometric_fast in thirds), written by the
RunLog. Its copy without the routing numbers has the `util`, `entropy`, `overflow` and `hsim` keys
taken out of every batch line, as a run logged before they were measured (the cache is rebuilt
from the lines, untimed). Printed, `name=value`, for `with` and `without`:
- csv_s, csv_us_per_batch, csv_bytes_per_batch; summary_s;
- tensorboard_s, tensorboard_us_per_batch, event_bytes_per_batch, images and image_bytes_mean
  (the heatmaps: about 100 of each kind a run);
and the ratios with / without of each time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geogui.rundir.export.tables import csv_header, run_summary, write_csv  # noqa: E402
from geogui.rundir.layout import CACHE_DIR, METRICS_FILE  # noqa: E402
from geogui.rundir.meta import read_meta  # noqa: E402
from geogui.rundir.reader import read_columns  # noqa: E402
from tests.rundir.synthetic_run import synthetic_run  # noqa: E402

ROUTING_KEYS = ("util", "entropy", "overflow", "hsim")


def without_routing(run: Path, out: Path) -> Path:
    shutil.copytree(run, out)
    shutil.rmtree(out / CACHE_DIR, ignore_errors=True)
    with open(run / METRICS_FILE, encoding="utf-8") as source, open(out / METRICS_FILE, "w", encoding="utf-8") as target:
        for line in source:
            record = json.loads(line)
            if record.get("kind") == "batch":
                line = json.dumps({k: v for k, v in record.items() if k not in ROUTING_KEYS},
                                  separators=(",", ":")) + "\n"
            target.write(line)
    read_columns(out)  # the cache, as the RunLog would have written it: not part of what is timed
    return out


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(run: Path, work: Path, steps: int, tensorboard: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    csv_path = work / f"{run.name}.csv"
    out["csv_s"] = timed(lambda: write_csv(run, csv_path))
    out["csv_us_per_batch"] = out["csv_s"] / steps * 1e6
    out["csv_bytes_per_batch"] = csv_path.stat().st_size / steps
    out["summary_s"] = timed(lambda: run_summary(run))
    if tensorboard:
        from geogui.rundir.export.tensorboard import write_tensorboard

        logdir = work / f"logs-{run.name}"
        out["tensorboard_s"] = timed(lambda: write_tensorboard(run, logdir))
        out["tensorboard_us_per_batch"] = out["tensorboard_s"] / steps * 1e6
        (target,) = {path.parent for path in logdir.rglob("events.out.tfevents.*")}
        out["event_bytes_per_batch"] = sum(path.stat().st_size for path in target.iterdir()) / steps
        out["images"], out["image_bytes_mean"] = _images(target)
    return out


def _images(logdir: Path) -> tuple[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir), size_guidance={"tensors": 0, "scalars": 1})
    accumulator.Reload()
    sizes = [len(event.tensor_proto.string_val[2]) for tag in accumulator.Tags()["tensors"] if "heatmap" in tag
             for event in accumulator.Tensors(tag)]
    return len(sizes), (sum(sizes) / len(sizes) if sizes else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--no-tensorboard", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        run = synthetic_run(work / "with", args.steps)
        read_columns(run)
        bare = without_routing(run, work / "without")
        print(f"steps={args.steps}")
        print(f"csv_columns={len(csv_header(read_meta(run).model_settings()))}")
        figures = {name: measure(path, work, args.steps, not args.no_tensorboard)
                   for name, path in (("with", run), ("without", bare))}
        for name, values in figures.items():
            for key, value in values.items():
                print(f"{name}_{key}={value:.4g}")
        for key in (key for key in figures["with"] if key.endswith("_s")):
            print(f"ratio_{key[:-2]}={figures['with'][key] / figures['without'][key]:.2f}")


if __name__ == "__main__":
    main()
