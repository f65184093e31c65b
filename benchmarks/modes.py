"""Median training-step time of each mode, measured interleaved in one process.

    python benchmarks/modes.py [--steps N] [--device D]

Each round times one full step (forward, backward, clip, optimizer steps) of every variant in turn,
on the same model and batch shape, so drift in machine load hits all variants alike. Prints a
table, then `mode=<name> ratio_to_standard=<x>` per variant, then `equivalence max_grad_diff=<x>`
(batched geometric against the reference loop, float32, same weights and batch).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from geogui.engine.data import get_batch, load_corpus
from geogui.engine.device import choose_device, synchronize
from geogui.engine.modes import LossWeights, geometric_fast_terms, geometric_terms, geometric_terms_reference, standard_terms
from geogui.engine.trainer import build_state
from geogui.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed rounds (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--ghosts", default="awake", choices=["awake", "dormant"],
                        help="ghost experts fully awake (every presentation computes; default) or all dormant "
                        "(the state at the start of a run: dormant ghost presentations skip their expert)")
    args = parser.parse_args()

    settings = Settings()  # the app's defaults: d_model 128, 4 layers, seq 128, batch 16, 4 + 4 experts
    choice = choose_device(args.device)
    device = choice.device
    state = build_state(settings, device)
    model, rotator = state.model, state.rotator
    if args.ghosts == "awake":
        for layer in model.moe_layers:
            layer.set_extra_state({"ghost_activation": [1.0] * layer.num_ghost, "saturation_ema": 0.0,
                                   "saturated_steps": 0})
    cfg, run = settings.model, settings.run
    weights = LossWeights.from_settings(run, cfg)
    corpus = load_corpus(settings.data, cfg.seq_len)
    generator = torch.Generator().manual_seed(0)

    variants = {
        "standard": lambda x, y: standard_terms(model, x, y, weights),
        "geometric_fast": lambda x, y: geometric_fast_terms(model, rotator, x, y, weights),
        "geometric": lambda x, y: geometric_terms(model, rotator, x, y, weights, cfg.presentation_chunk),
        "geometric_loop": lambda x, y: geometric_terms_reference(model, rotator, x, y, weights),
    }
    uses_rotator = {"standard": False, "geometric_fast": True, "geometric": True, "geometric_loop": True}

    def step(name: str) -> float:
        x, y = get_batch(corpus.train, run.batch_size, cfg.seq_len, generator)
        x, y = x.to(device), y.to(device)
        synchronize(device)
        start = time.perf_counter()
        state.model_optimizer.zero_grad(set_to_none=True)
        state.rotation_optimizer.zero_grad(set_to_none=True)
        terms = variants[name](x, y)
        terms.loss.backward()
        params = list(model.parameters()) + (list(rotator.parameters()) if uses_rotator[name] else [])
        torch.nn.utils.clip_grad_norm_(params, run.grad_clip)
        terms.loss.item()  # the trainer reads every term once per step
        state.model_optimizer.step()
        if uses_rotator[name]:
            state.rotation_optimizer.step()
        synchronize(device)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_index in range(args.warmup + args.steps):
        for name in variants:
            elapsed = step(name)
            if round_index >= args.warmup:
                times[name].append(elapsed)

    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"device={device} threads={torch.get_num_threads()} rounds={args.steps} "
          f"d_model={cfg.d_model} layers={cfg.n_layers} seq={cfg.seq_len} batch={run.batch_size} "
          f"experts={cfg.num_experts}+{cfg.num_ghost_experts} top_k={cfg.top_k} ghosts={args.ghosts}")
    print(f"{'mode':<16}{'median ms':>12}{'min ms':>10}{'max ms':>10}{'x standard':>12}")
    for name, values in times.items():
        print(f"{name:<16}{median[name] * 1e3:>12.1f}{min(values) * 1e3:>10.1f}{max(values) * 1e3:>10.1f}"
              f"{median[name] / median['standard']:>12.2f}")
    for name in variants:
        print(f"mode={name} ratio_to_standard={median[name] / median['standard']:.3f}")
    print(f"equivalence max_grad_diff={max_grad_diff(model, rotator, weights, corpus, settings, device):.3e}")


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
