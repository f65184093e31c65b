"""A decoder-only transformer language model whose feed-forward sublayers are Mixture-of-Experts layers
(`geogui.engine.moe`: routing, dispatch and the ghost experts' wake-up rule).

The ordinary pass routes every token; the geometric step instead forces every MoE layer to one expert
per presentation (`forward_presentation`, `forward_presentations`).

Generation adds cached twins of the two passes (`forward_cached`, `forward_presentations_cached`):
they take the attention keys and values of the bytes already seen, so a new byte costs one token's
pass. The training paths do not use them and are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from geogui.engine.moe import DISPATCH_PATHS, DispatchPath, MoEFeedForward, RoutingStats
from geogui.settings import ModelSettings

# One layer's attention keys and values, each (sequences, heads, time, head width).
LayerCache = tuple[torch.Tensor, torch.Tensor]


@dataclass
class CachedOutput:
    logits: torch.Tensor  # (B, t, V) for the t new tokens
    top_experts: torch.Tensor  # (L, B, t): each layer's top-1 routed expert for each new token
    cache: list[LayerCache]  # every layer's keys and values, the new tokens' included


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (B, T, V) or (P, B, T, V)
    hidden: torch.Tensor  # final residual stream before the last norm, (B, T, D) or (P, B, T, D)
    aux_loss: torch.Tensor  # unweighted load-balancing loss, mean over layers (0 when forced)
    routing: RoutingStats | None  # every layer's; None when routing was forced


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """x (batch * time, D): the residual stream is kept as one token matrix, so that every
        linear layer is one matmul with no reshapes around it (each is an op, forward and back)."""
        tokens, width = x.shape
        q, k, v = self.qkv(x).view(batch, tokens // batch, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(tokens, width))

    def forward_cached(self, x: torch.Tensor, batch: int, past: LayerCache | None) -> tuple[torch.Tensor, LayerCache]:
        """`forward` for new tokens x (batch * t, D) that follow the `past` keys and values."""
        tokens, width = x.shape
        q, k, v = self.qkv(x).view(batch, tokens // batch, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        if past is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            k, v = torch.cat((past[0], k), dim=2), torch.cat((past[1], v), dim=2)
            new, seen = q.shape[2], k.shape[2]
            # New token i sees every past one and the new ones up to itself; one token sees them all.
            mask = None if new == 1 else torch.ones(new, seen, dtype=torch.bool, device=x.device).tril(seen - new)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(tokens, width)), (k, v)

    def forward_step(self, x: torch.Tensor, slots: LayerCache, lengths: torch.Tensor) -> torch.Tensor:
        """`forward` for one new token per sequence, x (batch, D), sequence b following the first
        lengths[b] of its cached `slots`; its key and value are written into slot lengths[b] (in place)."""
        batch, width = x.shape
        q, k, v = self.qkv(x).view(batch, 1, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        keys, values = slots
        rows = torch.arange(batch, device=x.device)
        keys[rows, :, lengths] = k[:, :, 0]
        values[rows, :, lengths] = v[:, :, 0]
        # Each sequence sees its own filled slots and the new token; the slots past them are stale.
        mask = (torch.arange(keys.shape[2], device=x.device) <= lengths[:, None]).view(batch, 1, 1, -1)
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.proj(y.reshape(batch, width))


def default_dispatch(device_type: str) -> DispatchPath:
    """The routed dispatch that measures fastest on a device (benchmarks/modes.py prints both).

    On a GPU every op is a launch and every data-dependent shape a sync, so the fixed-shape dense
    path wins; on the CPU neither costs anything and the gather path does top_k / experts of the
    dense path's expert arithmetic."""
    return "gather" if device_type == "cpu" else "dense"


class Block(nn.Module):
    def __init__(self, cfg: ModelSettings):
        super().__init__()
        self.ln_attn = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg.d_model, cfg.n_heads)
        self.ln_ff = nn.LayerNorm(cfg.d_model)
        self.moe = MoEFeedForward(cfg)


class MoETransformer(nn.Module):
    def __init__(self, cfg: ModelSettings, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(vocab_size, cfg.d_model)
        self.position_embedding = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    @property
    def moe_layers(self) -> list[MoEFeedForward]:
        return [block.moe for block in self.blocks]

    def set_dispatch(self, path: DispatchPath) -> None:
        """How every routed layer sends tokens to experts (same function, see `default_dispatch`)."""
        if path not in DISPATCH_PATHS:
            raise ValueError(f"dispatch path must be one of {DISPATCH_PATHS}, got {path!r}")
        for layer in self.moe_layers:
            layer.dispatch = path

    def embed_tokens(self, idx: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(idx)

    def _positions(self, time: int, device: torch.device) -> torch.Tensor:
        return self.position_embedding(torch.arange(time, device=device))

    def _positions_from(self, start: int, time: int, device: torch.device) -> torch.Tensor:
        return self.position_embedding(torch.arange(start, start + time, device=device))

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.ln_final(hidden))

    def forward(self, idx: torch.Tensor) -> ModelOutput:
        """The ordinary routed pass (standard and geometric_fast)."""
        batch, time = idx.shape
        x = (self.embed_tokens(idx) + self._positions(time, idx.device)).view(batch * time, -1)
        aux_losses, routing = [], []
        for block in self.blocks:
            x = x + block.attn(block.ln_attn(x), batch)
            ff, aux, stats = block.moe.routed(block.ln_ff(x))
            x = x + ff
            aux_losses.append(aux)
            routing.append(stats.slot_counts)
        aux_loss = aux_losses[0] if len(aux_losses) == 1 else torch.stack(aux_losses).mean()
        return ModelOutput(self._head(x).view(batch, time, -1), x.view(batch, time, -1), aux_loss,
                           RoutingStats(torch.stack(routing), stats.slots))

    def forward_presentation(self, embeddings: torch.Tensor, expert: int) -> ModelOutput:
        """One presentation: already-rotated token embeddings (B, T, D), every MoE layer forced to `expert`."""
        batch, time, width = embeddings.shape
        x = (embeddings + self._positions(time, embeddings.device)).reshape(batch * time, width)
        for block in self.blocks:
            x = x + block.attn(block.ln_attn(x), batch)
            x = x + block.moe.forced_one(block.ln_ff(x), expert)
        return ModelOutput(self._head(x).view(batch, time, -1), x.view(batch, time, width), x.new_zeros(()), None)

    def forward_presentations(self, embeddings: torch.Tensor, experts: Sequence[int]) -> torch.Tensor:
        """Several presentations in one batched pass: embeddings (P, B, T, D), presentation p forced to
        experts[p]. Attention treats the P*B sequences as one batch; each MoE layer runs all P experts
        in one batched matmul. Returns the final hidden states (P, B, T, D); see `mean_logits`."""
        presentations, batch, time, width = embeddings.shape
        x = (embeddings + self._positions(time, embeddings.device)).reshape(presentations * batch * time, width)
        for block in self.blocks:
            x = x + block.attn(block.ln_attn(x), presentations * batch)
            x = x + block.moe.forced_stacked(block.ln_ff(x), experts)
        return x.view(presentations, batch, time, width)

    def mean_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """mean_p logits_p for hidden (P, B, T, D), with the LM head applied once, not P times.

        The head is linear with no bias, so mean_p(W n_p) = W mean_p(n_p): identical up to float
        rounding, without materialising P copies of the (B, T, vocab) logits or their gradients."""
        return self.lm_head(self.ln_final(hidden).mean(dim=0))

    # ---- cached incremental passes, for generation ----
    def forward_cached(self, idx: torch.Tensor, cache: list[LayerCache] | None = None) -> CachedOutput:
        """`forward` for the tokens idx (B, t) that follow the ones `cache` holds (None: the first).

        Positions are absolute, so the cached bytes and the new ones must fit seq_len together; a
        window that slides shifts every position and needs a fresh pass (see `engine.generation`)."""
        batch, time = idx.shape
        start = 0 if cache is None else cache[0][0].shape[2]
        x = (self.embed_tokens(idx) + self._positions_from(start, time, idx.device)).view(batch * time, -1)
        new_cache, top_experts = [], []
        for layer, block in enumerate(self.blocks):
            attended, kv = block.attn.forward_cached(block.ln_attn(x), batch, None if cache is None else cache[layer])
            x = x + attended
            normed = block.ln_ff(x)
            ff, _, _ = block.moe.routed(normed)
            x = x + ff
            # The router's first choice, read from the same logits `routed` ranks (dormant ghosts masked).
            top_experts.append((block.moe.router(normed) + block.moe.route_mask).argmax(dim=-1).view(batch, time))
            new_cache.append(kv)
        return CachedOutput(self._head(x).view(batch, time, -1), torch.stack(top_experts), new_cache)

    def forward_presentations_cached(
        self, embeddings: torch.Tensor, experts: Sequence[int], cache: list[LayerCache] | None = None
    ) -> tuple[torch.Tensor, list[LayerCache]]:
        """`forward_presentations` for new tokens' rotated embeddings (P, B, t, D) that follow the ones
        `cache` holds. Returns their final hidden states (P, B, t, D) and the new cache."""
        presentations, batch, time, width = embeddings.shape
        start = 0 if cache is None else cache[0][0].shape[2]
        x = (embeddings + self._positions_from(start, time, embeddings.device)).reshape(-1, width)
        new_cache = []
        for layer, block in enumerate(self.blocks):
            attended, kv = block.attn.forward_cached(block.ln_attn(x), presentations * batch,
                                                     None if cache is None else cache[layer])
            x = x + attended
            x = x + block.moe.forced_stacked(block.ln_ff(x), experts)
            new_cache.append(kv)
        return x.view(presentations, batch, time, width), new_cache

    def forward_step(self, idx: torch.Tensor, slots: list[LayerCache], lengths: torch.Tensor) -> CachedOutput:
        """`forward_cached` for one new token per sequence, idx (B, 1), sequence b following its own
        lengths[b] cached tokens: `slots` holds every layer's keys and values in seq_len slots per
        sequence (B, heads, seq_len, head width), the first lengths[b] filled; the new token fills the
        next (in place). Sequences of different lengths thus step together in one batch."""
        batch = idx.shape[0]
        x = self.embed_tokens(idx[:, 0]) + self.position_embedding(lengths)
        top_experts = []
        for block, layer_slots in zip(self.blocks, slots):
            x = x + block.attn.forward_step(block.ln_attn(x), layer_slots, lengths)
            normed = block.ln_ff(x)
            ff, _, _ = block.moe.routed(normed)
            x = x + ff
            top_experts.append((block.moe.router(normed) + block.moe.route_mask).argmax(dim=-1).view(batch, 1))
        return CachedOutput(self._head(x).view(batch, 1, -1), torch.stack(top_experts), slots)

    def forward_presentations_step(self, embeddings: torch.Tensor, experts: Sequence[int],
                                   slots: list[LayerCache], lengths: torch.Tensor) -> torch.Tensor:
        """`forward_step` for the presentations: rotated embeddings (P, B, 1, D) of one new token per
        sequence; `slots` holds the P * B sequences (presentation-major), lengths (B,) per sequence.
        Returns the final hidden states (P, B, 1, D)."""
        presentations, batch, _, width = embeddings.shape
        lengths = lengths.repeat(presentations)
        x = embeddings.reshape(-1, width) + self.position_embedding(lengths)
        for block, layer_slots in zip(self.blocks, slots):
            x = x + block.attn.forward_step(block.ln_attn(x), layer_slots, lengths)
            x = x + block.moe.forced_stacked(block.ln_ff(x), experts)
        return x.view(presentations, batch, 1, width)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
