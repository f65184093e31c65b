"""What evaluation, answer accuracy and samples cost beside training, at the default settings.

    python benchmarks/evaluation_cost.py [--steps K] [--device D] [--set section.field=value ...]

Trains the default model on the embedded corpus for K steps (default: the default run's length)
with the default sampling settings, and charges the time until each event arrives to that event's
kind: a batch's to training, an evaluation's, an accuracy's and a sample's to themselves (the
trainer makes each between two batches, outside the batches' own timing). The fraction is their
time over the training time; the defaults are meant to keep it at or under 10 %.

Lines a script can read:
    cost kind=<batch|eval|accuracy|sample> count=<n> seconds=<s>
    fraction eval=<e> accuracy=<a> sample=<s> total=<t>
"""

from __future__ import annotations

import argparse
import json
import time

from geogui.engine.trainer import Trainer
from geogui.settings import Settings


def _override(raw: dict, assignment: str) -> None:
    path, _, value = assignment.partition("=")
    section, field = path.split(".")
    raw.setdefault(section, {})[field] = json.loads(value)


def measure(settings: Settings) -> dict[str, list[float]]:
    costs: dict[str, list[float]] = {"batch": [], "eval": [], "accuracy": [], "sample": []}
    before = time.perf_counter()
    for event in Trainer(settings).run():
        now = time.perf_counter()
        if event.kind in costs:
            costs[event.kind].append(now - before)
        before = now
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=Settings().run.steps)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=JSON")
    args = parser.parse_args()
    raw: dict = {"run": {"steps": args.steps, "checkpoint_interval": 0}, "device": {"device": args.device}}
    for assignment in args.set:
        _override(raw, assignment)
    settings = Settings.model_validate(raw)
    print(f"settings run={settings.run.model_dump_json()} sampling={settings.sampling.model_dump_json()}")
    costs = measure(settings)
    for kind, seconds in costs.items():
        print(f"cost kind={kind} count={len(seconds)} seconds={sum(seconds):.3f}")
    training = sum(costs["batch"])
    parts = {kind: sum(costs[kind]) / training for kind in ("eval", "accuracy", "sample")}
    print("fraction " + " ".join(f"{kind}={value:.4f}" for kind, value in parts.items())
          + f" total={sum(parts.values()):.4f}")


if __name__ == "__main__":
    main()
