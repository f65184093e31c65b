"""The tokenised corpus, split into training text and a held-out tail, and random training windows."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geogui.engine.data.corpus import DEFAULT_CORPUS_SOURCE, default_corpus_text
from geogui.engine.data.files import DataError, read_training_text
from geogui.engine.data.tokenizer import encode
from geogui.settings import DataSettings


@dataclass(frozen=True)
class Corpus:
    train: torch.Tensor  # 1-D uint8 token ids
    val: torch.Tensor  # 1-D uint8 token ids: the held-out tail
    source: str  # the embedded corpus's name or the file path, for the GUI and run logs


def split_sizes(n_tokens: int, validation_fraction: float) -> tuple[int, int]:
    """(train, val) sizes; val is the tail, so it is text the model never saw during training."""
    n_val = int(n_tokens * validation_fraction)
    return n_tokens - n_val, n_val


def _min_tokens(seq_len: int, validation_fraction: float) -> int:
    need = seq_len + 1
    n = max(2 * need, int(need / validation_fraction) - 2)
    while min(split_sizes(n, validation_fraction)) < need:
        n += 1
    return n


def load_corpus(data: DataSettings, seq_len: int) -> Corpus:
    """Tokenise the chosen text and split off the held-out tail; both splits must fit one window."""
    if data.path is None:
        text, source = default_corpus_text(), DEFAULT_CORPUS_SOURCE
    else:
        text, source = read_training_text(data.path), str(data.path)
    tokens = encode(text)
    n_train, n_val = split_sizes(len(tokens), data.validation_fraction)
    if min(n_train, n_val) < seq_len + 1:
        needed = _min_tokens(seq_len, data.validation_fraction)
        raise DataError(
            f"{source}: too short: {len(tokens):,} bytes, but sequence length {seq_len} with held-out "
            f"fraction {data.validation_fraction:g} needs at least {needed:,} bytes "
            f"(each split needs {seq_len + 1})"
        )
    return Corpus(train=tokens[:n_train].clone(), val=tokens[n_train:].clone(), source=source)


def get_batch(
    tokens: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows: x is tokens[o : o+T], y is tokens[o+1 : o+T+1], as int64 for embedding / CE."""
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
    if tokens.dim() != 1 or tokens.numel() < seq_len + 1:
        raise ValueError(f"need a 1-D tensor of at least {seq_len + 1} tokens, got shape {tuple(tokens.shape)}")
    offsets = torch.randint(0, tokens.numel() - seq_len, (batch_size,), generator=generator)
    index = offsets[:, None] + torch.arange(seq_len + 1)
    windows = tokens.cpu()[index].long()
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
