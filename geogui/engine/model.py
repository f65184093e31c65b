"""A decoder-only transformer language model whose feed-forward sublayers are Mixture-of-Experts layers.

Each MoE layer has `num_experts` primary experts and `num_ghost_experts` ghost experts. The router
scores all of them; a token goes to its top-k experts (softmax over the k chosen logits, as in
Mixtral). Ghost experts start dormant: they cannot be chosen and their activation is 0.

Ghost wake-up rule (saturation). Each expert has a capacity of
    capacity_factor * (routed slots in the batch / num_experts),
the share it would hold if the primary experts split the work evenly, plus headroom (Switch
Transformer's definition). The layer's *overflow* is the fraction of all routed slots that landed on
a primary expert beyond its capacity: the work a capacity-limited MoE would have to drop. The layer
keeps an exponential moving average (0.9) of it; when that average stays above
`saturation_threshold` for `ghost_patience` consecutive training steps, the next dormant ghost wakes.
A woken ghost's activation ramps linearly from 0 to 1 over `ghost_ramp_steps` steps, and its gate is
multiplied by that activation, so a new expert fades in instead of jolting the model.

The geometric step instead *forces* every MoE layer to one expert per presentation; the gate of a
forced ghost expert is again its activation, so a dormant ghost contributes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geogui.settings import ModelSettings

_SATURATION_EMA = 0.9


class CountReduction(Protocol):
    world_size: int

    def sum(self, counts: torch.Tensor) -> torch.Tensor:
        """counts summed over every rank's share of the batch (not differentiated)."""


@dataclass
class RoutingStats:
    """Per-layer router statistics of one routed forward pass (detached tensors, still on device)."""

    slot_counts: torch.Tensor  # (N,) routed slots per expert
    overflow: torch.Tensor  # () fraction of slots over primary capacity


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (B, T, V) or (P, B, T, V)
    hidden: torch.Tensor  # final residual stream before the last norm, (B, T, D) or (P, B, T, D)
    aux_loss: torch.Tensor  # unweighted load-balancing loss, mean over layers (0 when forced)
    routing: list[RoutingStats]  # one per layer; empty when routing was forced


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, time, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(batch, time, width))


class Experts(nn.Module):
    """N two-layer GELU feed-forward experts, stored stacked so several can run in one batched matmul."""

    def __init__(self, count: int, d_model: int, hidden: int, out_std: float):
        super().__init__()
        self.w_in = nn.Parameter(torch.randn(count, d_model, hidden) * 0.02)
        self.b_in = nn.Parameter(torch.zeros(count, hidden))
        self.w_out = nn.Parameter(torch.randn(count, hidden, d_model) * out_std)
        self.b_out = nn.Parameter(torch.zeros(count, d_model))

    def one(self, expert: int, x: torch.Tensor) -> torch.Tensor:
        """Expert `expert` on tokens x (n, D)."""
        h = F.gelu(x @ self.w_in[expert] + self.b_in[expert])
        return h @ self.w_out[expert] + self.b_out[expert]

    def stacked(self, experts: torch.Tensor, x: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """gates[p] * expert experts[p] on x[p], for every p at once: x (P, n, D) -> (P, n, D).

        The gate is folded into the output weights (P*H*D multiplies) rather than applied to the
        output (P*n*D multiplies)."""
        h = F.gelu(torch.baddbmm(self.b_in[experts].unsqueeze(1), x, self.w_in[experts]))
        gates = gates.view(-1, 1, 1)
        return torch.baddbmm((self.b_out[experts].unsqueeze(1) * gates), h, self.w_out[experts] * gates)


class MoEFeedForward(nn.Module):
    def __init__(self, cfg: ModelSettings):
        super().__init__()
        self.num_primary = cfg.num_experts
        self.num_ghost = cfg.num_ghost_experts
        self.num_total = cfg.num_experts + cfg.num_ghost_experts
        self.top_k = cfg.top_k
        self.capacity_factor = cfg.capacity_factor
        self.saturation_threshold = cfg.saturation_threshold
        self.ghost_patience = cfg.ghost_patience
        self.ghost_ramp_steps = cfg.ghost_ramp_steps
        self.router = nn.Linear(cfg.d_model, self.num_total, bias=False)
        # GPT-2 style: residual-branch outputs start small, scaled by depth.
        self.experts = Experts(self.num_total, cfg.d_model, cfg.expert_hidden, 0.02 / math.sqrt(2 * cfg.n_layers))
        # Gate multiplier per expert: 1 for primaries, the ramping activation for ghosts.
        self.register_buffer("gate_scale", torch.ones(self.num_total))
        self.register_buffer("routable", torch.ones(self.num_total, dtype=torch.bool))
        self._ghost_activation = np.zeros(self.num_ghost)
        self._saturation_ema = 0.0
        self._saturated_steps = 0
        # Set under data parallelism: sums expert counts over ranks, so that the balance loss and the
        # overflow (hence every ghost wake-up) are measured on the global batch, alike on every rank.
        self.over_ranks: CountReduction | None = None
        self._sync_ghost_buffers()

    # ---- ghost life cycle (host-side state, mirrored into buffers used by forward) ----
    @property
    def ghost_activation(self) -> np.ndarray:
        return self._ghost_activation.copy()

    @property
    def saturation(self) -> float:
        return self._saturation_ema

    def _sync_ghost_buffers(self) -> None:
        scale = torch.ones(self.num_total)
        scale[self.num_primary:] = torch.from_numpy(self._ghost_activation).float()
        self.gate_scale.copy_(scale)
        self.routable.copy_(scale > 0)
        self._live_experts = [e for e in range(self.num_total) if scale[e] > 0]

    def update_ghosts(self, overflow: float) -> int | None:
        """Advance the wake-up rule by one training step. Returns the ghost index that woke, if any."""
        self._saturation_ema = _SATURATION_EMA * self._saturation_ema + (1 - _SATURATION_EMA) * overflow
        self._saturated_steps = self._saturated_steps + 1 if self._saturation_ema > self.saturation_threshold else 0
        before = self._ghost_activation.copy()
        awake = before > 0
        self._ghost_activation[awake] = np.minimum(1.0, before[awake] + 1.0 / self.ghost_ramp_steps)
        woke = None
        if self._saturated_steps >= self.ghost_patience and not awake.all():
            woke = int(np.flatnonzero(~awake)[0])
            self._ghost_activation[woke] = 1.0 / self.ghost_ramp_steps
            self._saturated_steps = 0
        if not np.array_equal(before, self._ghost_activation):
            self._sync_ghost_buffers()
        return woke

    def get_extra_state(self) -> dict:
        return {"ghost_activation": self._ghost_activation.tolist(), "saturation_ema": self._saturation_ema,
                "saturated_steps": self._saturated_steps}

    def set_extra_state(self, state: dict) -> None:
        self._ghost_activation = np.asarray(state["ghost_activation"], dtype=np.float64)
        self._saturation_ema = float(state["saturation_ema"])
        self._saturated_steps = int(state["saturated_steps"])
        self._sync_ghost_buffers()

    # ---- forward paths ----
    def routed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, RoutingStats]:
        """Top-k routing over the routable experts. Returns output, unweighted aux loss and stats."""
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])
        logits = self.router(tokens).masked_fill(~self.routable, float("-inf"))
        probs = F.softmax(logits, dim=-1)
        top_logits, top_experts = logits.topk(self.top_k, dim=-1)
        gates = F.softmax(top_logits, dim=-1) * self.gate_scale[top_experts]

        out = torch.zeros_like(tokens)
        for expert in range(self.num_total):
            token_idx, slot = torch.where(top_experts == expert)
            if token_idx.numel():
                contribution = self.experts.one(expert, tokens[token_idx]) * gates[token_idx, slot, None]
                out.index_add_(0, token_idx, contribution)

        slots = top_experts.numel()
        counts = torch.bincount(top_experts.flatten(), minlength=self.num_total).to(tokens.dtype)
        if self.over_ranks is not None:
            counts, slots = self.over_ranks.sum(counts), slots * self.over_ranks.world_size
        # Switch-style balance loss over the experts that can be chosen: N * sum_i f_i * p_i.
        fraction = counts / slots
        routable = self.routable.sum()
        aux = routable * (fraction * probs.mean(dim=0)).sum()
        capacity = self.capacity_factor * slots / self.num_primary
        overflow = (counts[: self.num_primary] - capacity).clamp_min(0).sum() / slots
        return out.view(shape), aux, RoutingStats(counts.detach(), overflow.detach())

    def forced_one(self, x: torch.Tensor, expert: int) -> torch.Tensor:
        """Every token to one expert (reference path of the geometric step)."""
        shape = x.shape
        out = self.experts.one(expert, x.reshape(-1, shape[-1])) * self.gate_scale[expert]
        return out.view(shape)

    def forced_stacked(self, x: torch.Tensor, experts: Sequence[int]) -> torch.Tensor:
        """x (P*B, T, D) holding P presentations; presentation p goes to experts[p], all in one matmul.

        A dormant ghost's gate is 0, so its presentation's output here is exactly 0 and its expert
        would get a zero gradient: it is skipped instead of computed and multiplied by 0."""
        shape = x.shape
        per_presentation = x.reshape(len(experts), -1, shape[-1])
        live = [p for p, expert in enumerate(experts) if expert in self._live_experts]
        if len(live) == len(experts):
            ids = torch.as_tensor(list(experts), device=x.device)
            return self.experts.stacked(ids, per_presentation, self.gate_scale[ids]).view(shape)
        out = torch.zeros_like(per_presentation)
        if live:
            ids = torch.as_tensor([experts[p] for p in live], device=x.device)
            out[live] = self.experts.stacked(ids, per_presentation[live], self.gate_scale[ids])
        return out.view(shape)


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

    def embed_tokens(self, idx: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(idx)

    def _positions(self, time: int, device: torch.device) -> torch.Tensor:
        return self.position_embedding(torch.arange(time, device=device))

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.ln_final(hidden))

    def forward(self, idx: torch.Tensor) -> ModelOutput:
        """The ordinary routed pass (standard and geometric_fast)."""
        x = self.embed_tokens(idx) + self._positions(idx.shape[1], idx.device)
        aux_losses, routing = [], []
        for block in self.blocks:
            x = x + block.attn(block.ln_attn(x))
            ff, aux, stats = block.moe.routed(block.ln_ff(x))
            x = x + ff
            aux_losses.append(aux)
            routing.append(stats)
        return ModelOutput(self._head(x), x, torch.stack(aux_losses).mean(), routing)

    def forward_presentation(self, embeddings: torch.Tensor, expert: int) -> ModelOutput:
        """One presentation: already-rotated token embeddings (B, T, D), every MoE layer forced to `expert`."""
        x = embeddings + self._positions(embeddings.shape[1], embeddings.device)
        for block in self.blocks:
            x = x + block.attn(block.ln_attn(x))
            x = x + block.moe.forced_one(block.ln_ff(x), expert)
        return ModelOutput(self._head(x), x, x.new_zeros(()), [])

    def forward_presentations(self, embeddings: torch.Tensor, experts: Sequence[int]) -> torch.Tensor:
        """Several presentations in one batched pass: embeddings (P, B, T, D), presentation p forced to
        experts[p]. Attention treats the P*B sequences as one batch; each MoE layer runs all P experts
        in one batched matmul. Returns the final hidden states (P, B, T, D); see `mean_logits`."""
        presentations, batch, time, width = embeddings.shape
        x = (embeddings + self._positions(time, embeddings.device)).reshape(presentations * batch, time, width)
        for block in self.blocks:
            x = x + block.attn(block.ln_attn(x))
            x = x + block.moe.forced_stacked(block.ln_ff(x), experts)
        return x.view(presentations, batch, time, width)

    def mean_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """mean_p logits_p for hidden (P, B, T, D), with the LM head applied once, not P times.

        The head is linear with no bias, so mean_p(W n_p) = W mean_p(n_p): identical up to float
        rounding, without materialising P copies of the (B, T, vocab) logits or their gradients."""
        return self.lm_head(self.ln_final(hidden).mean(dim=0))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
