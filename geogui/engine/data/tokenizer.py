"""Bytes are the tokens (UTF-8, vocabulary of 256), so there is nothing to download or train, and any
text the user brings is representable."""

from __future__ import annotations

from typing import Iterable

import torch

VOCAB_SIZE = 256


def encode(text: str) -> torch.Tensor:
    """UTF-8 bytes as a 1-D uint8 tensor (one token per byte)."""
    raw = text.encode("utf-8")
    if not raw:
        return torch.empty(0, dtype=torch.uint8)
    # frombuffer avoids a Python list of a million ints; the bytearray gives it a writable buffer.
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8)


def decode(ids: torch.Tensor | Iterable[int]) -> str:
    """Inverse of `encode`. Model samples can cut a multi-byte character in half, hence errors="replace"."""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().reshape(-1).tolist()
    return bytes(ids).decode("utf-8", errors="replace")
