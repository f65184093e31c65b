"""Answer accuracy: the share of held-out questions the model answers right, writing greedily (the
most likely byte each time) until the record's closing blank line, in the mode being judged.

The questions are answered together: each pass runs every unfinished question's window as one
batch (right-padded: causal attention keeps a row's real bytes blind to its padding, and routing
is per token), and a question leaves the batch when it writes the record end. Long records fill
the window at once, and past seq_len a key/value cache is rebuilt every byte (see
`engine.generation`), so a batch of full passes is what pays here (benchmarks/generation.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from geogui.engine.data.answer_check import check_answer, extract_answer
from geogui.engine.data.heldout import HeldOutQuestion
from geogui.engine.data.tokenizer import decode, encode
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


def _last_logits(model: MoETransformer, rotator: DataRotator | None, mode: Mode, idx: torch.Tensor,
                 lengths: torch.Tensor) -> torch.Tensor:
    """(A, V) logits after each row's last real byte; idx (A, W) is right-padded."""
    rows = torch.arange(idx.shape[0], device=idx.device)
    if mode is not Mode.GEOMETRIC:
        return model(idx).logits[rows, lengths - 1]
    angles = rotator.angles()[:, None, None, :]
    hidden = model.forward_presentations(rotator.rotate(model.embed_tokens(idx).unsqueeze(0), angles),
                                         presentation_experts(model))
    return model.mean_logits(hidden[:, rows, lengths - 1].unsqueeze(2))[:, 0]


def greedy_continuations(model: MoETransformer, rotator: DataRotator | None, prompts: list[str], mode: Mode,
                         max_bytes: int, stop: str = RECORD_END) -> list[str]:
    """Each prompt's greedy continuation (up to max_bytes, ending with `stop` when reached), batched."""
    if mode is Mode.GEOMETRIC and rotator is None:
        raise ValueError("the geometric mode needs the run's rotator")
    device, window = next(model.parameters()).device, model.cfg.seq_len
    contexts = [encode(prompt).tolist() for prompt in prompts]
    if any(not context for context in contexts):
        raise ValueError("a prompt is empty: the model needs at least one byte to continue")
    written: list[list[int]] = [[] for _ in prompts]
    stop_bytes = list(stop.encode("utf-8"))
    active = list(range(len(prompts)))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            while active:
                windows = [contexts[row][-window:] for row in active]
                width = max(len(w) for w in windows)
                idx = torch.tensor([w + [0] * (width - len(w)) for w in windows], dtype=torch.long, device=device)
                lengths = torch.tensor([len(w) for w in windows], device=device)
                # The pass's one device-to-host read: the chosen bytes.
                chosen = _last_logits(model, rotator, mode, idx, lengths).argmax(dim=-1).tolist()
                still = []
                for row, byte in zip(active, chosen):
                    contexts[row].append(byte)
                    written[row].append(byte)
                    ended = stop_bytes and written[row][-len(stop_bytes):] == stop_bytes
                    if not ended and len(written[row]) < max_bytes:
                        still.append(row)
                active = still
    finally:
        model.train(was_training)
    return [decode(text) for text in written]


def answer_accuracy(model: MoETransformer, rotator: DataRotator | None, questions: list[HeldOutQuestion],
                    mode: Mode, max_bytes: int) -> AccuracyResult:
    started = time.perf_counter()
    if not questions:
        return AccuracyResult(0, 0, 0, 0.0)
    texts = greedy_continuations(model, rotator, [q.prompt for q in questions], mode, max_bytes)
    right = unparsed = 0
    for question, text in zip(questions, texts):
        verdict = check_answer(question.question, question.answer, extract_answer(text))
        right += verdict.right
        unparsed += not verdict.readable
    return AccuracyResult(right, len(questions), unparsed, time.perf_counter() - started)
