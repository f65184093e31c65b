"""Data-parallel throughput: 1 process against N ranks under torchrun, on the same global batch.

    python benchmarks/ddp.py [--device cpu|cuda] [--ranks N] [--steps S] [--rounds R] [--mode M]

Each round launches the trainer once per configuration, alternating, so that drift in machine load
hits them alike: 1 process on the whole global batch (no torch.distributed at all), then N ranks
under torchrun, each on 1/N of it (DDP with find_unused_parameters=True, as geogui-train runs),
then N ranks with find_unused_parameters=False (possible only in a mode where every parameter gets
a gradient, as in geometric_fast, the default here). A configuration's figure is the median over
rounds of the median global tokens/s of its timed steps (the first `--warmup` are not timed).

Prints `world_size=<n> tokens_per_s=<x>` for 1 and N, `scaling_efficiency=<x>` last
(tokens/s with N ranks / (N x tokens/s with 1)), and before it the cost of find_unused_parameters:
`find_unused_parameters_cost=<x>` (ms per step with it / without it, N ranks).

On a CPU every process gets one torch thread by default (`--cpu-threads`), so N ranks use N cores
against the single process's one: the usual strong-scaling efficiency. With fewer free cores than
ranks (a shared 2-core machine), the ranks take turns and the efficiency falls well below 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER_FLAG = "--worker"


def worker(args: argparse.Namespace) -> None:
    """One rank (or the single process): train, then rank 0 writes its step figures as JSON."""
    import torch

    from geogui.engine.metrics import BatchRecord
    from geogui.engine.trainer import Trainer
    from geogui.settings import Settings

    ranks = int(os.environ.get("WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, args.threads))
    replicas = None
    if ranks > 1 or "RANK" in os.environ:
        from geogui.engine.distributed.ddp import DistributedReplicas

        device_type = "cuda" if args.device == "cuda" else "cpu"
        replicas = DistributedReplicas(device_type, find_unused_parameters=bool(args.find_unused))
    settings = Settings.model_validate({
        "run": {"mode": args.mode, "steps": args.warmup + args.steps, "batch_size": args.global_batch // ranks,
                "eval_interval": 1_000_000, "checkpoint_interval": 0, "seed": 0},
        "device": {"device": args.device},
    })
    trainer = Trainer(settings, on_nonfinite="stop", replicas=replicas)
    records = [e for e in trainer.run() if isinstance(e, BatchRecord)][args.warmup:]
    if replicas is None or replicas.rank == 0:
        Path(args.out).write_text(json.dumps({
            "tokens_per_s": statistics.median(r.tokens_per_s for r in records),
            "ms_per_step": statistics.median(r.batch_time_s * 1e3 for r in records),
            "device": trainer.device_choice.device.type,
        }))
    if replicas is not None:
        replicas.close()


def launch(args: argparse.Namespace, ranks: int, find_unused: bool, cores: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        threads = args.cpu_threads if args.device == "cpu" else 1
        common = [WORKER_FLAG, "--out", str(out), "--mode", args.mode, "--steps", str(args.steps), "--warmup",
                  str(args.warmup), "--global-batch", str(args.global_batch), "--device", args.device,
                  "--threads", str(threads), "--find-unused", str(int(find_unused))]
        if ranks == 1:
            command = [sys.executable, __file__, *common]
        else:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                       __file__, *common]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{ranks} rank(s) failed:\n{done.stderr[-4000:]}")
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(WORKER_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--find-unused", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--ranks", type=int, default=2, help="ranks to compare with 1 process (default 2)")
    parser.add_argument("--mode", default="geometric_fast", choices=["standard", "geometric_fast", "geometric"])
    parser.add_argument("--global-batch", type=int, default=16, help="sequences per step over all ranks")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per launch (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--cpu-threads", type=int, default=1, metavar="T",
                        help="torch threads per process on the CPU (default 1)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating launches of each configuration")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.global_batch % args.ranks:
        raise SystemExit(f"--global-batch {args.global_batch} must be divisible by --ranks {args.ranks}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    configurations = {"1": (1, True), "n": (args.ranks, True)}
    if args.mode == "geometric_fast":  # every parameter gets a gradient: DDP can run without the search
        configurations["n_static"] = (args.ranks, False)
    results: dict[str, list[dict]] = {name: [] for name in configurations}
    for round_index in range(args.rounds):
        for name, (ranks, find_unused) in configurations.items():
            results[name].append(launch(args, ranks, find_unused, cores))
            print(f"# round {round_index + 1}: {ranks} rank(s), find_unused_parameters={find_unused}: "
                  f"{results[name][-1]['tokens_per_s']:,.0f} tokens/s", file=sys.stderr)

    def median(name: str, key: str) -> float:
        return statistics.median(result[key] for result in results[name])

    print(f"# device={results['1'][0]['device']} cores={cores} mode={args.mode} global_batch={args.global_batch} "
          f"cpu_threads={args.cpu_threads}")
    one, many = median("1", "tokens_per_s"), median("n", "tokens_per_s")
    print(f"world_size=1 tokens_per_s={one:.1f}")
    print(f"world_size={args.ranks} tokens_per_s={many:.1f}")
    if "n_static" in results:
        with_search, without = median("n", "ms_per_step"), median("n_static", "ms_per_step")
        print(f"find_unused_parameters=True ms_per_step={with_search:.2f}")
        print(f"find_unused_parameters=False ms_per_step={without:.2f}")
        print(f"find_unused_parameters_cost={with_search / without:.3f}")
    print(f"scaling_efficiency={many / (args.ranks * one):.3f}")


if __name__ == "__main__":
    main()
