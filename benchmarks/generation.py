"""What writing text costs: generation speed with and without the key/value cache, the exact sliding
window beside the strided one, and the answer accuracy's price beside an evaluation and beside
training steps, measured in one process.

    python benchmarks/generation.py [--device D] [--bytes N] [--questions Q] [--answer-bytes A] [--rounds R]

For the app's default model (seq_len 128), the same model with a window longer than the sample
(where the cache serves every byte) and the tiny test model, a sample of N bytes (default 512) is
written with and without the cache, in the standard and geometric modes, rounds interleaved; on the
default model the cached sample is also written with the exact sliding window (window_stride None)
beside the default stride (half the window); then
`answer_accuracy` on Q held-out questions (default 32, greedy, up to A bytes each, default the
sampling default's 256) is timed batched and one question at a time, against one evaluation
(`Trainer._evaluate`) and 100 training steps (`Trainer._train_batch`, 10 timed and scaled), and
batched with the exact sliding window.

Lines a script can read:
    generation model=<m> mode=<mode> cached_bytes_per_s=<x> uncached_bytes_per_s=<y> ratio=<x/y>
    stride model=<m> mode=<mode> exact_bytes_per_s=<x> strided_bytes_per_s=<y> ratio=<y/x>
    accuracy questions=<q> batched_s=<a> one_by_one_s=<b> evaluation_s=<e> train_100_steps_s=<t>
    accuracy_stride exact_s=<a> strided_s=<b> ratio=<a/b> exact_per_100_steps=<a/t> strided_per_100_steps=<b/t>
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from geogui.engine.answer_accuracy import answer_accuracy, greedy_continuations
from geogui.engine.data import decode, load_corpus
from geogui.engine.data.heldout import heldout_questions
from geogui.engine.device import synchronize
from geogui.engine.generation import HALF_WINDOW, generate
from geogui.engine.trainer import Trainer
from geogui.settings import Mode, SamplingSettings, Settings

TINY_MODEL = {"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": 32, "expert_hidden": 32}
MODELS = {"default": {}, "default_seq1024": {"seq_len": 1024}, "tiny": TINY_MODEL}
PROMPT = "Q: ((λx.(λy.(x y))) (λz.z))\nReasoning:\n"


def trainer_for(model: dict, device: str) -> Trainer:
    settings = Settings.model_validate({"model": model, "device": {"device": device}, "run": {"steps": 10**6}})
    trainer = Trainer(settings, corpus=load_corpus(settings.data, settings.model.seq_len))
    next(trainer.run())  # RunStarted: the device is chosen and the state built
    return trainer


def time_sample(trainer: Trainer, mode: Mode, count: int, use_cache: bool, window_stride=HALF_WINDOW) -> float:
    state = trainer.state
    sampling = SamplingSettings(temperature=0.8, max_bytes=count)
    sample = generate(state.model, state.rotator, PROMPT, sampling, mode, use_cache=use_cache,
                      generator=torch.Generator().manual_seed(0), window_stride=window_stride)
    return sample.byte_count / sample.seconds


def generation_speeds(name: str, trainer: Trainer, count: int, rounds: int) -> None:
    for mode in (Mode.STANDARD, Mode.GEOMETRIC):
        cached, uncached = [], []
        for _ in range(rounds):  # interleaved: load on the machine hits both alike
            cached.append(time_sample(trainer, mode, count, True))
            uncached.append(time_sample(trainer, mode, count, False))
        c, u = statistics.median(cached), statistics.median(uncached)
        print(f"generation model={name} mode={mode.value} cached_bytes_per_s={c:.0f} "
              f"uncached_bytes_per_s={u:.0f} ratio={c / u:.2f}")


def stride_speeds(name: str, trainer: Trainer, count: int, rounds: int) -> None:
    for mode in (Mode.STANDARD, Mode.GEOMETRIC):
        exact, strided = [], []
        for _ in range(rounds):
            exact.append(time_sample(trainer, mode, count, True, window_stride=None))
            strided.append(time_sample(trainer, mode, count, True))
        e, s = statistics.median(exact), statistics.median(strided)
        print(f"stride model={name} mode={mode.value} exact_bytes_per_s={e:.0f} strided_bytes_per_s={s:.0f} "
              f"ratio={s / e:.2f}")


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def accuracy_costs(trainer: Trainer, questions_count: int, max_bytes: int, device: torch.device) -> None:
    state, corpus = trainer.state, trainer._corpus
    mode = Mode.GEOMETRIC_FAST
    questions = heldout_questions(decode(corpus.val), questions_count)
    batched = timed(lambda: answer_accuracy(state.model, state.rotator, questions, mode, max_bytes))
    exact = timed(lambda: answer_accuracy(state.model, state.rotator, questions, mode, max_bytes, window_stride=None))
    greedy = SamplingSettings(temperature=0, max_bytes=max_bytes)
    one_by_one = timed(lambda: [generate(state.model, state.rotator, q.prompt, greedy, mode, stop="\n\n")
                                for q in questions])
    plain_batched = timed(lambda: greedy_continuations(state.model, state.rotator, [q.prompt for q in questions],
                                                       mode, max_bytes))
    state.mode = mode
    trainer._evaluate(state, corpus, 0)  # warm-up
    evaluation = timed(lambda: trainer._evaluate(state, corpus, 0))
    started = time.perf_counter()
    for step in range(1, 11):
        trainer._train_batch(state, corpus, step, started)
    synchronize(device)
    train_100 = (time.perf_counter() - started) * 10
    print(f"accuracy questions={len(questions)} batched_s={batched:.2f} (generation alone {plain_batched:.2f}) "
          f"one_by_one_s={one_by_one:.2f} evaluation_s={evaluation:.3f} train_100_steps_s={train_100:.2f}")
    print(f"  accuracy / evaluation = {batched / evaluation:.1f}x   accuracy / 100 steps = {batched / train_100:.2f}x"
          f"   batched speed-up over one by one = {one_by_one / batched:.1f}x")
    print(f"accuracy_stride exact_s={exact:.2f} strided_s={batched:.2f} ratio={exact / batched:.2f} "
          f"exact_per_100_steps={exact / train_100:.2f} strided_per_100_steps={batched / train_100:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--bytes", type=int, default=512)
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--answer-bytes", type=int, default=SamplingSettings().answer_bytes)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS), help="which of " + ", ".join(MODELS))
    args = parser.parse_args()
    default_trainer = None
    for name in args.models.split(","):
        trainer = trainer_for(MODELS[name], args.device)
        print(f"# {name}: {trainer.settings.model.model_dump(include={'d_model', 'n_layers', 'seq_len'})} "
              f"on {trainer.device_choice.device}, {args.bytes}-byte samples, median of {args.rounds}")
        generation_speeds(name, trainer, args.bytes, args.rounds)
        if name == "default":
            stride_speeds(name, trainer, args.bytes, args.rounds)
            default_trainer = trainer
    if default_trainer is not None:
        print("# answer accuracy on the default model (geometric_fast), one evaluation, 100 training steps")
        accuracy_costs(default_trainer, args.questions, args.answer_bytes, default_trainer.device_choice.device)


if __name__ == "__main__":
    main()
