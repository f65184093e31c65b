"""Answer accuracy: the share of held-out questions the model answers right, writing greedily (the
most likely byte each time) until the record's closing blank line, in the mode being judged.

The questions are answered together, with `generate`'s strided window (see `engine.generation`):
each question keeps its window's keys and values in a fixed-size cache, so every byte is one
batched one-token pass over all unfinished questions, whatever their lengths; the questions whose
window moved first rebuild their caches in one right-padded pass (causal attention keeps a row's
real bytes blind to its padding, and routing is per token). A question leaves the batch when it
writes the record end. The rebuilds are what pays past seq_len: one per question per stride bytes
(benchmarks/generation.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from geogui.engine.data.answer_check import check_answer, extract_answer
from geogui.engine.data.heldout import HeldOutQuestion
from geogui.engine.data.tokenizer import decode, encode
from geogui.engine.generation import HALF_WINDOW, WindowStride, stride_bytes, window_start
from geogui.engine.model import MoETransformer
from geogui.engine.modes import presentation_experts
from geogui.engine.rotation import DataRotator
from geogui.settings import Mode

RECORD_END = "\n\n"


@dataclass(frozen=True)
class AccuracyResult:
    right: int
    asked: int
    unparsed: int  # answers missing (no "A: " line within max_bytes) or not readable as a term
    seconds: float

    @property
    def fraction(self) -> float | None:
        """right / asked; None when nothing was asked (data without records: no metric, not zero)."""
        return self.right / self.asked if self.asked else None


class WindowCaches:
    """Every unfinished question's attention keys and values, in seq_len slots each, and how many of
    its slots are filled: the cache of its current window, at positions 0 … filled - 1."""

    def __init__(self, model: MoETransformer, rotator: DataRotator | None, mode: Mode, rows: int):
        self.model, self.rotator, self.rows = model, rotator, rows
        self.experts = presentation_experts(model) if mode is Mode.GEOMETRIC else None
        self.presentations = 1 if self.experts is None else len(self.experts)
        cfg, parameter = model.cfg, next(model.parameters())
        shape = (self.presentations * rows, cfg.n_heads, cfg.seq_len, cfg.d_model // cfg.n_heads)
        self.slots = [(parameter.new_zeros(shape), parameter.new_zeros(shape)) for _ in range(cfg.n_layers)]
        self.filled = torch.zeros(rows, dtype=torch.long, device=parameter.device)

    def _sequences(self, rows: torch.Tensor) -> torch.Tensor:
        """The slots' sequence of each presentation of `rows`, presentation-major as the passes order them."""
        offsets = torch.arange(self.presentations, device=rows.device)[:, None] * self.rows
        return (offsets + rows[None, :]).flatten()

    def _rotated(self, idx: torch.Tensor) -> torch.Tensor:
        return self.rotator.rotate(self.model.embed_tokens(idx).unsqueeze(0), self.rotator.angles()[:, None, None, :])

    def prefill(self, rows: list[int], windows: list[list[int]]) -> None:
        """Rebuild `rows`' caches from their windows (all but the byte the next step writes), in one
        right-padded pass: causal attention keeps a row's real bytes blind to its padding."""
        device = self.filled.device
        self.filled[torch.tensor(rows, dtype=torch.long, device=device)] = torch.tensor(
            [len(w) for w in windows], dtype=torch.long, device=device)
        rows, windows = [r for r, w in zip(rows, windows) if w], [w for w in windows if w]
        if not rows:
            return
        width = max(len(w) for w in windows)
        idx = torch.tensor([w + [0] * (width - len(w)) for w in windows], dtype=torch.long, device=device)
        if self.experts is None:
            cache = self.model.forward_cached(idx).cache
        else:
            cache = self.model.forward_presentations_cached(self._rotated(idx), self.experts)[1]
        sequences = self._sequences(torch.tensor(rows, dtype=torch.long, device=device))
        for (keys, values), (new_keys, new_values) in zip(self.slots, cache):
            keys[sequences, :, :width] = new_keys
            values[sequences, :, :width] = new_values

    def step(self, last: list[int]) -> torch.Tensor:
        """(rows, V) logits after each row's newest byte `last`, which joins its cache."""
        idx = torch.tensor(last, dtype=torch.long, device=self.filled.device)[:, None]
        if self.experts is None:
            logits = self.model.forward_step(idx, self.slots, self.filled).logits[:, 0]
        else:
            hidden = self.model.forward_presentations_step(self._rotated(idx), self.experts, self.slots, self.filled)
            logits = self.model.mean_logits(hidden)[:, 0]
        self.filled += 1
        return logits

    def keep(self, rows: list[int]) -> None:
        """Drop every row but `rows` (finished questions), renumbering the kept ones 0 … len(rows) - 1."""
        kept = torch.tensor(rows, dtype=torch.long, device=self.filled.device)
        sequences = self._sequences(kept)
        self.slots = [(keys[sequences], values[sequences]) for keys, values in self.slots]
        self.filled, self.rows = self.filled[kept], len(rows)


def greedy_continuations(model: MoETransformer, rotator: DataRotator | None, prompts: list[str], mode: Mode,
                         max_bytes: int, stop: str = RECORD_END,
                         window_stride: WindowStride = HALF_WINDOW) -> list[str]:
    """Each prompt's greedy continuation (up to max_bytes, ending with `stop` when reached), batched,
    with `generate`'s window rule (the window advances window_stride bytes at a time)."""
    if mode is Mode.GEOMETRIC and rotator is None:
        raise ValueError("the geometric mode needs the run's rotator")
    seq_len = model.cfg.seq_len
    stride = stride_bytes(window_stride, seq_len)
    contexts = [encode(prompt).tolist() for prompt in prompts]
    if any(not context for context in contexts):
        raise ValueError("a prompt is empty: the model needs at least one byte to continue")
    written: list[list[int]] = [[] for _ in prompts]
    starts: list[int | None] = [None for _ in prompts]
    stop_bytes = list(stop.encode("utf-8"))
    active = list(range(len(prompts)))  # question of each cache row
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            caches = WindowCaches(model, rotator, mode, len(prompts))
            while active:
                moved = []
                for slot, question in enumerate(active):
                    start = window_start(starts[question], len(contexts[question]), seq_len, stride)
                    if start != starts[question]:
                        moved.append(slot)
                    starts[question] = start
                caches.prefill(moved, [contexts[active[slot]][starts[active[slot]]:-1] for slot in moved])
                # The pass's one device-to-host read: the chosen bytes.
                chosen = caches.step([contexts[question][-1] for question in active]).argmax(dim=-1).tolist()
                still = []
                for slot, (question, byte) in enumerate(zip(active, chosen)):
                    contexts[question].append(byte)
                    written[question].append(byte)
                    ended = stop_bytes and written[question][-len(stop_bytes):] == stop_bytes
                    if not ended and len(written[question]) < max_bytes:
                        still.append(slot)
                if len(still) < len(active):
                    caches.keep(still)
                active = [active[slot] for slot in still]
    finally:
        model.train(was_training)
    return [decode(text) for text in written]


def answer_accuracy(model: MoETransformer, rotator: DataRotator | None, questions: list[HeldOutQuestion],
                    mode: Mode, max_bytes: int, window_stride: WindowStride = HALF_WINDOW) -> AccuracyResult:
    started = time.perf_counter()
    if not questions:
        return AccuracyResult(0, 0, 0, 0.0)
    texts = greedy_continuations(model, rotator, [q.prompt for q in questions], mode, max_bytes,
                                 window_stride=window_stride)
    right = unparsed = 0
    for question, text in zip(questions, texts):
        verdict = check_answer(question.question, question.answer, extract_answer(text))
        right += verdict.right
        unparsed += not verdict.readable
    return AccuracyResult(right, len(questions), unparsed, time.perf_counter() - started)
