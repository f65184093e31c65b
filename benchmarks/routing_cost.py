"""What the per-layer routing numbers cost a training step, measured beside the steps themselves.

    python benchmarks/routing_cost.py [--steps K] [--mode M] [--device D]

The numbers are computed on the host from the routed slots the step's one transfer already carries
(`engine.routing_stats`), so the device does no more work for them: the step sends 4 x 8 slot counts
instead of their sum over layers and 4 device-computed overflows (`benchmarks/modes.py` counts the
aten ops). What they add is host time after the step's clock has stopped, in three places, each
timed here around the very calls the trainer makes, on the records of a real run of K steps:
- `router_watch`: utilization, entropy and overflow from the slots, the dead-expert counters and the
  ghosts' wake-up rule (which ran before too: its share is in the figure, so it over-counts);
- `line`: writing the record as a metrics.jsonl line, with the routing numbers and without them;
- `plots`: handing the records to the window's series, with the routing numbers and without them.

Lines a script can read:
    step_ms=<mean batch time>
    cost part=<router_watch|line|plots> us_per_step=<added microseconds> fraction_of_step=<f>
    total fraction_of_step=<f>        (target <= 0.01)
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

from geogui.engine.log_lines import batch_line
from geogui.engine.metrics import BatchRecord
from geogui.engine.router_watch import RouterWatch
from geogui.engine.trainer import Trainer
from geogui.gui.plotdata.run_series import RunSeries
from geogui.settings import Settings

ROUTING_FIELDS = ("expert_utilization", "routing_entropy", "layer_overflow", "hidden_similarity")


class TimedWatch(RouterWatch):
    """The trainer's own RouterWatch, timed."""

    seconds: list[float]

    def after_step(self, model, step, layer_slots):
        start = time.perf_counter()
        try:
            return super().after_step(model, step, layer_slots)
        finally:
            self.seconds.append(time.perf_counter() - start)


def _per_record(function, records: list, rounds: int = 5) -> float:
    """Median seconds per record of `function` over all records."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function(records)
        times.append((time.perf_counter() - start) / len(records))
    return statistics.median(times)


def _without_routing(record: BatchRecord) -> BatchRecord:
    return dataclasses.replace(record, **{name: None for name in ROUTING_FIELDS})


def _plotted(records: list[BatchRecord]) -> None:
    series = RunSeries(8, 4)
    for start in range(0, len(records), 5):  # the worker hands batches over a few at a time
        series.append(records[start:start + 5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--mode", default="geometric_fast")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    settings = Settings.model_validate({"run": {"steps": args.steps, "checkpoint_interval": 0, "mode": args.mode,
                                                "eval_interval": args.steps},
                                        "device": {"device": args.device},
                                        "sampling": {"sample_interval": 0, "accuracy_questions": 0}})
    trainer = Trainer(settings)
    watch_seconds: list[float] = []
    records: list[BatchRecord] = []
    for event in trainer.run():
        if event.kind == "started":
            trainer._router_watch = watch = TimedWatch(settings.model, settings.run.dead_expert_steps)
            watch.seconds = watch_seconds
        elif isinstance(event, BatchRecord):
            records.append(event)
    records = records[len(records) // 10:]  # no warm-up
    step_s = float(np.mean([r.batch_time_s for r in records]))
    bare = [_without_routing(r) for r in records]
    costs = {
        "router_watch": statistics.median(watch_seconds),
        "line": _per_record(lambda rs: [batch_line(r) for r in rs], records)
        - _per_record(lambda rs: [batch_line(r) for r in rs], bare),
        "plots": _per_record(_plotted, records) - _per_record(_plotted, bare),
    }
    print(f"step_ms={step_s * 1e3:.1f}")
    for part, seconds in costs.items():
        print(f"cost part={part} us_per_step={seconds * 1e6:.1f} fraction_of_step={seconds / step_s:.5f}")
    print(f"total fraction_of_step={sum(costs.values()) / step_s:.5f}")


if __name__ == "__main__":
    main()
