"""Text from a trained model: byte by byte, in the mode the model is judged in.

standard and geometric_fast sample from the ordinary routed pass; geometric from the mean of the
presentations' logits (each presentation rotated and forced to its expert), as the trainer's
evaluation scores it.

The model sees at most seq_len bytes, with positions 0 … seq_len - 1, as in training. Within the
window a key/value cache makes each new byte one token's pass. Positions are absolute, so a window
that moves shifts every cached key: the cache must be rebuilt by a full pass over the new window.
The window therefore advances `window_stride` bytes at a time (a strided sliding window, as in the
usual strided perplexity evaluation): when it is full, its first stride bytes are dropped, one pass
rebuilds the cache over the rest, and the next stride - 1 bytes are incremental again. Each byte
sees between seq_len - stride + 1 and seq_len bytes, for one full pass per stride bytes; stride 1
(or None) is the exact sliding window, a full pass every byte past seq_len.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from geogui.engine.data.tokenizer import decode, encode
from geogui.engine.model import LayerCache, MoETransformer
from geogui.engine.modes import presentation_experts
from geogui.engine.rotation import DataRotator
from geogui.settings import Mode, SamplingSettings

NOT_ROUTED = -1  # the expert recorded for a byte the geometric mode wrote: it routes nothing

# The default stride, for sampling and for answer accuracy: half the window. Every byte still sees at
# least half a window of context (held-out answers run a few hundred bytes past a 128-byte window),
# while an exact sliding window pays a full pass for every such byte; half the window makes it one
# full pass per seq_len / 2 bytes (benchmarks/generation.py measures both).
HALF_WINDOW: Literal["half"] = "half"
WindowStride = int | None | Literal["half"]


def stride_bytes(window_stride: WindowStride, seq_len: int) -> int:
    """The stride in bytes: None is the exact sliding window (1), HALF_WINDOW seq_len // 2."""
    if window_stride is None:
        return 1
    if window_stride == HALF_WINDOW:
        return max(1, seq_len // 2)
    if not 1 <= window_stride <= seq_len:
        raise ValueError(f"the window stride must be between 1 and seq_len ({seq_len}), got {window_stride}")
    return int(window_stride)


def window_start(start: int | None, length: int, seq_len: int, stride: int) -> int:
    """Where the model's view of a `length`-byte context begins, given where it began for the byte
    before (None: this is the first byte, and a prompt longer than the window keeps its last seq_len)."""
    if start is None:
        return max(0, length - seq_len)
    if length - start <= seq_len:
        return start
    return max(start + stride, length - seq_len)


@dataclass(frozen=True)
class Generated:
    prompt: str
    text: str  # the continuation, decoded with errors="replace"; ends with `stop` when it was reached
    byte_count: int
    # (n_layers, byte_count): the router's top-1 expert in each layer at the position whose output
    # chose each byte; NOT_ROUTED in geometric mode.
    experts: np.ndarray
    seconds: float
    stopped: bool = False  # the stop string was written (else max_bytes ran out)


class NextByteLogits:
    """The model's logits for the byte after a growing context, in one mode, with or without a cache."""

    def __init__(self, model: MoETransformer, rotator: DataRotator | None, mode: Mode, use_cache: bool,
                 window_stride: WindowStride = HALF_WINDOW):
        if mode is Mode.GEOMETRIC and rotator is None:
            raise ValueError("the geometric mode needs the run's rotator")
        self.model, self.rotator, self.mode, self.use_cache = model, rotator, mode, use_cache
        self.window = model.cfg.seq_len
        self.stride = stride_bytes(window_stride, self.window)
        self.device = next(model.parameters()).device
        self._start: int | None = None  # where the window began for the last byte (see `window_start`)
        self._cache: list[LayerCache] | None = None
        self._cached = 0  # window bytes the cache holds, at positions 0 … _cached - 1

    def logits(self, context: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(V,) logits for the byte after `context` (grown by one byte since the last call), and
        (n_layers,) top-1 experts of its last position."""
        start = window_start(self._start, len(context), self.window, self.stride)
        window = context[start:]
        incremental = self.use_cache and self._cache is not None and start == self._start \
            and self._cached == len(window) - 1  # the window has not moved: every cached position holds
        new = window[-1:] if incremental else window
        idx = torch.tensor([new], dtype=torch.long, device=self.device)
        cache = self._cache if incremental else None
        logits, experts, cache = self._routed(idx, cache) if self.mode is not Mode.GEOMETRIC \
            else self._geometric(idx, cache)
        # A full window moves with the next byte: its cache would only be rebuilt, so none is kept.
        keep = self.use_cache and len(window) < self.window
        self._start = start
        self._cache, self._cached = (cache, len(window)) if keep else (None, 0)
        return logits, experts

    def _routed(self, idx, cache):
        # Without a cache this is the whole window's ordinary pass (`forward`'s ops, plus the
        # router's top-1 read for the experts record), every byte.
        out = self.model.forward_cached(idx, cache)
        return out.logits[0, -1], out.top_experts[:, 0, -1], out.cache

    def _geometric(self, idx, cache):
        experts = presentation_experts(self.model)
        angles = self.rotator.angles()[:, None, None, :]
        embeddings = self.rotator.rotate(self.model.embed_tokens(idx).unsqueeze(0), angles)
        hidden, cache = self.model.forward_presentations_cached(embeddings, experts, cache)
        not_routed = torch.full((self.model.cfg.n_layers,), NOT_ROUTED)
        return self.model.mean_logits(hidden[:, :, -1:])[0, -1], not_routed, cache


def pick_byte(logits: torch.Tensor, sampling: SamplingSettings, generator: torch.Generator | None) -> int:
    """Greedy at temperature 0; else a draw from softmax(logits / T), restricted to the top_k bytes."""
    logits = logits.float().cpu()
    if sampling.temperature == 0:
        return int(logits.argmax())
    logits = logits / sampling.temperature
    if 0 < sampling.top_k < logits.numel():
        threshold = logits.topk(sampling.top_k).values[-1]
        logits = logits.masked_fill(logits < threshold, -torch.inf)
    return int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator))


def generate(model: MoETransformer, rotator: DataRotator | None, prompt: str, sampling: SamplingSettings,
             mode: Mode, *, generator: torch.Generator | None = None, stop: str | None = None,
             use_cache: bool = True, window_stride: WindowStride = HALF_WINDOW) -> Generated:
    """Continue `prompt` for up to sampling.max_bytes bytes, or until the text written ends with `stop`.

    Past seq_len the window advances window_stride bytes at a time (see the module's docstring)."""
    context = encode(prompt).tolist()
    if not context:
        raise ValueError("the prompt is empty: the model needs at least one byte to continue")
    stop_bytes = list(stop.encode("utf-8")) if stop else []
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    written: list[int] = []
    experts: list[torch.Tensor] = []
    try:
        with torch.inference_mode():
            next_logits = NextByteLogits(model, rotator, mode, use_cache, window_stride)
            while len(written) < sampling.max_bytes:
                logits, chosen = next_logits.logits(context)
                byte = pick_byte(logits, sampling, generator)
                written.append(byte)
                context.append(byte)
                experts.append(chosen)
                if stop_bytes and written[-len(stop_bytes):] == stop_bytes:
                    break
    finally:
        model.train(was_training)
    routing = torch.stack(experts, dim=1).cpu().numpy().astype(np.int64) if experts \
        else np.zeros((model.cfg.n_layers, 0), dtype=np.int64)
    stopped = bool(stop_bytes) and written[-len(stop_bytes):] == stop_bytes
    return Generated(prompt, decode(written), len(written), routing, time.perf_counter() - started, stopped)
