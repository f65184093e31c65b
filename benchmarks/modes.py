"""What a training step of each mode costs, measured interleaved in one process: time, arithmetic,
aten ops and host syncs, on each routed dispatch path.

    python benchmarks/modes.py [--steps N] [--device D] [--ghosts awake|dormant] [--compile] [--precision bf16]

Each round times one real training step (`Trainer._train_batch`: batch, forward, backward, clip,
optimizer steps, the record's one transfer) of every variant in turn, on the same model and batch
shape, so drift in machine load hits all variants alike. Variants: each mode on each dispatch path
(`gpu`: the fixed-shape dense dispatch the trainer uses on CUDA and MPS; `cpu`: the gather dispatch
it uses on the CPU; `geometric` has no routing, so its two paths are one measurement), and
`geometric_loop`, the reference per-presentation loop. `--compile` and `--precision bf16` add
those variants of each mode on the device's own path, side by side with eager fp32.

Prints the fp32 matmul peak of this machine (measured in the same run), a table, then one line per
variant that a script can read:
    mode=<m> path=<gpu|cpu> variant=<eager-fp32|compiled|bf16> ms_per_step=<x> gflop_per_step=<g>
    gflop_per_s=<r> frac_of_peak=<f> aten_ops_per_step=<n> sync_ops_per_step=<k> ratio_to_standard=<x>
(sync ops exclude the one record transfer, which every step makes), and
`equivalence max_grad_diff=<x>` (batched geometric against the reference loop, float32).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from geogui.engine.data import get_batch, load_corpus
from geogui.engine.device import DeviceChoice, synchronize
from geogui.engine.model import default_dispatch
from geogui.engine.modes import LossWeights, geometric_terms, geometric_terms_reference
from geogui.engine.op_count import count_ops
from geogui.engine.distributed.replicas import SingleProcess
from geogui.engine.trainer import Trainer
from geogui.settings import Mode, Settings


class LoopReplicas(SingleProcess):
    """The geometric mode through the reference loop: one full pass per presentation."""

    def loss_terms(self, mode, model, rotator, x, y, weights, chunk):
        return geometric_terms_reference(model, rotator, x, y, weights)


class CompiledReplicas(SingleProcess):
    def __init__(self, compiled):
        self.compiled = compiled

    def loss_terms(self, mode, model, rotator, x, y, weights, chunk):
        return self.compiled(mode, model, rotator, x, y, weights, chunk)


@dataclass
class Variant:
    name: str  # the mode, or geometric_loop
    mode: Mode
    path: str  # gpu | cpu
    kind: str = "eager-fp32"  # eager-fp32 | compiled | bf16
    replicas: SingleProcess = field(default_factory=SingleProcess)
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    times: list[float] = field(default_factory=list)
    gflop: float = 0.0
    ops: int = 0
    syncs: int = 0
    compile_s: float | None = None

    @property
    def label(self) -> str:
        return f"{self.name}/{self.path}" + ("" if self.kind == "eager-fp32" else f"/{self.kind}")


def matmul_peak_gflops(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """The fp32 matmul rate this machine reaches now (the best of several timed matmuls)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(repeats + 2):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed rounds (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--ghosts", default="awake", choices=["awake", "dormant"],
                        help="ghost experts fully awake (every presentation computes; default) or all dormant "
                        "(the state at the start of a run: dormant ghost presentations skip their expert)")
    parser.add_argument("--compile", action="store_true", help="also each mode with the step compiled")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: also each mode under bf16 autocast (measured even on the CPU)")
    parser.add_argument("--loop", action=argparse.BooleanOptionalAction, default=True,
                        help="time the reference geometric loop too (default on)")
    args = parser.parse_args()

    # The app's defaults: d_model 128, 4 layers, seq 128, batch 16, 4 + 4 experts, top-2.
    settings = Settings.model_validate({"device": {"device": args.device}, "run": {"steps": 10**6}})
    corpus = load_corpus(settings.data, settings.model.seq_len)
    trainer = Trainer(settings, corpus=corpus)
    events = trainer.run()
    next(events)  # RunStarted: the device is chosen and the state built
    choice: DeviceChoice = trainer.device_choice
    device, state = choice.device, trainer.state
    if choice.fallback_reason:
        print(f"note: {choice.fallback_reason}")
    if args.ghosts == "awake":
        for layer in state.model.moe_layers:
            layer.set_extra_state({"ghost_activation": [1.0] * layer.num_ghost, "saturation_ema": 0.0,
                                   "saturated_steps": 0})
    own_path = "gpu" if default_dispatch(device.type) == "dense" else "cpu"

    variants = [Variant(mode.value, mode, path) for mode in (Mode.STANDARD, Mode.GEOMETRIC_FAST)
                for path in ("gpu", "cpu")]
    variants.append(Variant("geometric", Mode.GEOMETRIC, own_path))
    if args.loop:
        variants.append(Variant("geometric_loop", Mode.GEOMETRIC, own_path, replicas=LoopReplicas()))
    if args.compile:
        from geogui.engine.step_options import CompiledTerms

        compiled = CompiledTerms()
        variants += [Variant(m.value, m, own_path, "compiled", CompiledReplicas(compiled)) for m in Mode]
    if args.precision == "bf16":
        bf16 = lambda: torch.autocast(device.type, dtype=torch.bfloat16)  # noqa: E731
        variants += [Variant(m.value, m, own_path, "bf16", autocast=bf16) for m in Mode]

    def step(variant: Variant) -> float:
        state.mode = variant.mode
        state.model.set_dispatch("dense" if variant.path == "gpu" else "gather")
        trainer.replicas = variant.replicas
        trainer._autocast = variant.autocast
        synchronize(device)
        start = time.perf_counter()
        record, _ = trainer._train_batch(state, corpus, state.step + 1, start)
        elapsed = time.perf_counter() - start
        if record is None:
            raise SystemExit(f"{variant.label}: the loss was not finite")
        return elapsed

    for variant in variants:  # compile (and note the cold compile time) before anything is timed
        if variant.kind == "compiled":
            start = time.perf_counter()
            step(variant)
            variant.compile_s = time.perf_counter() - start
    for round_index in range(args.warmup + args.steps):
        for variant in variants:
            elapsed = step(variant)
            if round_index >= args.warmup:
                variant.times.append(elapsed)
    for variant in variants:  # counted once each, after timing, so the counters cost nothing above
        flops = FlopCounterMode(display=False)
        with flops:
            step(variant)
        variant.gflop = flops.get_total_flops() / 1e9
        if variant.kind != "compiled":  # a compiled graph's kernels are not aten ops
            _, counted = count_ops(lambda: step(variant))
            variant.ops, variant.syncs = counted.total, sum(counted.syncs.values())

    peak = matmul_peak_gflops(device)
    cfg, run = settings.model, settings.run
    print(f"device={device} threads={torch.get_num_threads()} rounds={args.steps} "
          f"d_model={cfg.d_model} layers={cfg.n_layers} seq={cfg.seq_len} batch={run.batch_size} "
          f"experts={cfg.num_experts}+{cfg.num_ghost_experts} top_k={cfg.top_k} ghosts={args.ghosts} "
          f"fp32_matmul_peak_gflops={peak:.1f}")
    standard = statistics.median(next(v for v in variants if v.name == "standard" and v.path == own_path).times)
    print(f"{'variant':<32}{'median ms':>10}{'min ms':>9}{'max ms':>9}{'x std':>7}{'GFLOP':>8}"
          f"{'GFLOP/s':>9}{'of peak':>8}{'ops':>6}{'syncs':>6}")
    for v in variants:
        median = statistics.median(v.times)
        print(f"{v.label:<32}{median * 1e3:>10.1f}{min(v.times) * 1e3:>9.1f}{max(v.times) * 1e3:>9.1f}"
              f"{median / standard:>7.2f}{v.gflop:>8.2f}{v.gflop / median:>9.1f}{v.gflop / median / peak:>8.2f}"
              f"{v.ops if v.ops else '-':>6}{v.syncs if v.ops else '-':>6}")
    for v in variants:
        median = statistics.median(v.times)
        paths = ("gpu", "cpu") if v.mode is Mode.GEOMETRIC and v.kind == "eager-fp32" else (v.path,)
        for path in paths:
            line = (f"mode={v.name} path={path} variant={v.kind} ms_per_step={median * 1e3:.1f} "
                    f"gflop_per_step={v.gflop:.3f} gflop_per_s={v.gflop / median:.1f} "
                    f"frac_of_peak={v.gflop / median / peak:.3f} aten_ops_per_step={v.ops if v.ops else 'na'} "
                    f"sync_ops_per_step={v.syncs if v.ops else 'na'} ratio_to_standard={median / standard:.3f}")
            if v.compile_s is not None:
                line += f" cold_compile_s={v.compile_s:.1f}"
            print(line)
    weights = LossWeights.from_settings(run, cfg)
    print(f"equivalence max_grad_diff={max_grad_diff(state.model, state.rotator, weights, corpus, settings, device):.3e}")


def max_grad_diff(model, rotator, weights, corpus, settings, device) -> float:
    """Largest |gradient difference| between batched geometric and the loop, over every parameter."""
    x, y = get_batch(corpus.train, settings.run.batch_size, settings.model.seq_len, torch.Generator().manual_seed(1))
    x, y = x.to(device), y.to(device)
    params = list(model.parameters()) + list(rotator.parameters())
    grads = []
    for fn in (geometric_terms, geometric_terms_reference):
        for p in params:
            p.grad = None
        fn(model, rotator, x, y, weights).loss.backward()
        grads.append([p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in params])
    return max((a - b).abs().max().item() for a, b in zip(*grads))


if __name__ == "__main__":
    main()
