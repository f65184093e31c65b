"""geogui-sample: what a trained run writes. Loads a run's checkpoint, continues a prompt (by default
the first held-out question) and, with --accuracy, scores its answers to held-out questions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import torch
from pydantic import ValidationError

from geogui.cli.terminal import InputError, report_error
from geogui.engine.answer_accuracy import RECORD_END, answer_accuracy
from geogui.engine.data.heldout import heldout_questions
from geogui.engine.generation import generate
from geogui.rundir.meta import RunMeta
from geogui.rundir.sampling import CHECKPOINTS, SamplingError, SamplingRun, load_sampling_run, run_sampling_settings
from geogui.settings import Mode, SamplingSettings, describe_validation_error

PROGRAM = "geogui-sample"
DEFAULT_ACCURACY_QUESTIONS = SamplingSettings.model_fields["accuracy_questions"].default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Sample text from a trained geogui run.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run directory")
    parser.add_argument("--prompt", metavar="TEXT", help="text to continue (default: the first held-out question)")
    parser.add_argument("--checkpoint", choices=sorted(CHECKPOINTS), default="latest",
                        help="which checkpoint to load (default latest)")
    parser.add_argument("--temperature", type=float, metavar="T", help="0 = greedy (default: the run's setting)")
    parser.add_argument("--top-k", type=int, metavar="K", help="sample among the K most likely bytes (0 = all)")
    parser.add_argument("--max-bytes", type=int, metavar="N", help="bytes to write (a sample also stops at a "
                        "record's closing blank line)")
    parser.add_argument("--seed", type=int, metavar="S", help="seed of the sampling, for a reproducible sample")
    parser.add_argument("--mode", choices=[m.value for m in Mode], help="mode to sample in (default: the checkpoint's)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="cpu",
                        help="device (default cpu)")
    parser.add_argument("--accuracy", type=int, nargs="?", const=-1, metavar="N",
                        help=f"also answer N held-out questions greedily and print the share answered right "
                             f"(default N: the run's setting, else {DEFAULT_ACCURACY_QUESTIONS})")
    return parser


class LoadedRun(SamplingRun):
    """A run loaded for sampling, whose unreadable data is an input error."""

    def validation_text(self) -> str:
        try:
            return super().validation_text()
        except SamplingError as exc:
            raise InputError(str(exc)) from None


def load_run(run_dir: Path, which: str, device: str) -> LoadedRun:
    try:
        run = load_sampling_run(run_dir, which, device)
    except SamplingError as exc:
        raise InputError(str(exc)) from None
    return LoadedRun(run.meta, run.state, run.checkpoint)


def sampling_from(meta: RunMeta, args: argparse.Namespace) -> SamplingSettings:
    """The run's sampling settings (defaults where it has none), the flags over them, validated."""
    raw: dict[str, Any] = run_sampling_settings(meta)
    for key in ("temperature", "top_k", "max_bytes", "prompt"):
        if getattr(args, key) is not None:
            raw[key] = getattr(args, key)
    if args.max_bytes is not None:  # --max-bytes bounds the answers of --accuracy too
        raw["answer_bytes"] = args.max_bytes
    try:
        return SamplingSettings.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"sampling settings: {describe_validation_error(exc)}") from None


def default_prompt(run: LoadedRun) -> str:
    """The first held-out question, else the first line of the held-out text."""
    text = run.validation_text()
    questions = heldout_questions(text, 1)
    if questions:
        return questions[0].prompt
    first_line = text.lstrip("\n").split("\n", 1)[0][: run.state.model.cfg.seq_len // 2]
    if not first_line:
        raise InputError("the held-out text gives no prompt; pass --prompt TEXT")
    return first_line


def print_sample(run: LoadedRun, sampling: SamplingSettings, mode: Mode, seed: int | None) -> None:
    prompt = sampling.prompt or default_prompt(run)
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    sample = generate(run.state.model, run.state.rotator, prompt, sampling, mode, generator=generator,
                      stop=RECORD_END)
    print(f"--- {run.checkpoint.parent.parent.name}: step {run.state.step}, {mode.value}, "
          f"temperature {sampling.temperature:g} ---")
    print(f"--- prompt ---\n{prompt}")
    speed = sample.byte_count / sample.seconds if sample.seconds > 0 else float("inf")
    print(f"--- sample ({sample.byte_count} bytes, {speed:,.0f} bytes/s) ---\n{sample.text}")


def print_accuracy(run: LoadedRun, sampling: SamplingSettings, mode: Mode, asked: int) -> None:
    if asked < 0:
        asked = sampling.accuracy_questions or DEFAULT_ACCURACY_QUESTIONS
    questions = heldout_questions(run.validation_text(), asked)
    if not questions:
        print("answer accuracy: the data has no question/answer records, so there are no questions to ask")
        return
    result = answer_accuracy(run.state.model, run.state.rotator, questions, mode, sampling.answer_bytes)
    print(f"answer accuracy: {result.right}/{result.asked} ({100 * result.fraction:.1f}%) on held-out questions"
          f" ({result.unparsed} without a readable answer; {result.seconds:.1f} s)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.accuracy is not None and args.accuracy == 0:
            raise InputError("--accuracy N needs N >= 1")
        run = load_run(args.run_dir, args.checkpoint, args.device)
        sampling = sampling_from(run.meta, args)
        mode = Mode(args.mode) if args.mode else run.state.mode
        print_sample(run, sampling, mode, args.seed)
        if args.accuracy is not None:
            print_accuracy(run, sampling, mode, args.accuracy)
    except InputError as exc:
        report_error(PROGRAM, str(exc))
        return 2
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
