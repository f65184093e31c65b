"""The Mixture-of-Experts feed-forward layer: routing, the two dispatch paths, and the ghost experts.

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
from typing import Literal, Protocol, Sequence

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
    """Router statistics of one routed pass, still on the device (nothing in them is differentiable):
    of one layer from `MoEFeedForward.routed`, of every layer (a leading layer axis) from the model."""

    slot_counts: torch.Tensor  # (N,) or (L, N) routed slots per expert
    slots: int  # routed slots in the batch (over every rank under data parallelism)


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

    def stacked(self, experts: torch.Tensor | None, x: torch.Tensor, gates: torch.Tensor | None) -> torch.Tensor:
        """gates[p] * expert experts[p] on x[p], for every p at once: x (P, n, D) -> (P, n, D).
        `experts` None: every expert, in order; `gates` None: all gates 1 (no multiply at all).

        The gate is folded into the output weights (P*H*D multiplies) rather than applied to the
        output (P*n*D multiplies)."""
        w_in, b_in, w_out, b_out = self.w_in, self.b_in, self.w_out, self.b_out
        if experts is not None:
            w_in, b_in, w_out, b_out = (p.index_select(0, experts) for p in (w_in, b_in, w_out, b_out))
        if gates is not None:
            gates = gates.view(-1, 1)
            b_out, w_out = b_out * gates, w_out * gates.unsqueeze(-1)
        h = F.gelu(torch.baddbmm(b_in.unsqueeze(1), x, w_in))
        return torch.baddbmm(b_out.unsqueeze(1), h, w_out)


DispatchPath = Literal["dense", "gather"]
DISPATCH_PATHS: tuple[DispatchPath, ...] = ("dense", "gather")


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
        self.dispatch: DispatchPath = "dense"
        self.router = nn.Linear(cfg.d_model, self.num_total, bias=False)
        # GPT-2 style: residual-branch outputs start small, scaled by depth.
        self.experts = Experts(self.num_total, cfg.d_model, cfg.expert_hidden, 0.02 / math.sqrt(2 * cfg.n_layers))
        # Gate multiplier per expert: 1 for primaries, the ramping activation for ghosts.
        self.register_buffer("gate_scale", torch.ones(self.num_total))
        self.register_buffer("routable", torch.ones(self.num_total, dtype=torch.bool))
        # Added to the router logits: 0 for a routable expert, -inf for a dormant ghost (one add
        # instead of a negation and a masked fill every forward).
        self.register_buffer("route_mask", torch.zeros(self.num_total), persistent=False)  # derived state
        # The live experts as a device index (None when all are live), so that no forward pass
        # turns a Python list into a tensor: that is a blocking host-to-device copy on a GPU.
        self.register_buffer("live_index", None, persistent=False)
        self._ghost_activation = np.zeros(self.num_ghost)
        self._saturation_ema = 0.0
        self._saturated_steps = 0
        self._live_experts: list[int] = []
        self._live_gates_one = True  # every live expert's gate multiplier is exactly 1 (none ramping)
        self._presentation_index: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor | None]] = {}
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

    @property
    def live_experts(self) -> np.ndarray:
        """(E + G,) bool: the experts the router can choose now, from the host's state (no device read)."""
        mask = np.zeros(self.num_total, dtype=bool)
        mask[self._live_experts] = True
        return mask

    def _sync_ghost_buffers(self) -> None:
        # Host arithmetic in numpy, then one small copy per buffer: only when a ghost wakes (or the
        # state is loaded), after the step's record transfer, so the copies find the queue empty.
        scale = np.ones(self.num_total, dtype=np.float32)
        scale[self.num_primary:] = self._ghost_activation
        live_mask = scale > 0
        self.gate_scale.copy_(torch.from_numpy(scale))
        self.routable.copy_(torch.from_numpy(live_mask))
        self.route_mask.copy_(torch.from_numpy(np.where(live_mask, 0.0, -np.inf).astype(np.float32)))
        live = np.flatnonzero(live_mask).tolist()
        self._live_gates_one = bool((scale[live_mask] == 1).all())
        if live != self._live_experts:  # only a wake-up changes shapes; a ramp only changes values
            self._live_experts = live
            device = self.gate_scale.device
            self.live_index = None if len(live) == self.num_total else torch.tensor(live, device=device)
            self._index_all_presentations()

    def _apply(self, fn, recurse=True):
        # Moving the module moves its buffers; the cached presentation indices are rebuilt on the new device.
        module = super()._apply(fn, recurse)
        self._index_all_presentations()
        return module

    def _index_all_presentations(self) -> None:
        """Rebuild the presentation indices now, not on the next geometric step: a compiled step
        guards on this cache, and a key added during a step would compile it once more."""
        self._presentation_index.clear()
        self._presentations_index(range(self.num_total))

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
        if woke is not None:
            self._sync_ghost_buffers()
        else:  # a ramp: the gates that moved are set from scalars, with no host-to-device copy
            for ghost in np.flatnonzero(before != self._ghost_activation):
                self.gate_scale[self.num_primary + ghost].fill_(float(np.float32(self._ghost_activation[ghost])))
            self._live_gates_one = bool((self._ghost_activation[self._ghost_activation > 0] == 1).all())
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
        """Top-k routing over the routable experts. Returns output, unweighted aux loss and stats.

        No op here depends on the data for its shape, and nothing is read on the host: the
        statistics stay on the device until the trainer's one transfer per step."""
        shape = x.shape
        tokens = x if x.dim() == 2 else x.reshape(-1, shape[-1])
        logits = self.router(tokens) + self.route_mask
        probs = F.softmax(logits, dim=-1)
        top_logits, top_experts = logits.topk(self.top_k, dim=-1)
        gates = F.softmax(top_logits, dim=-1) * self.gate_scale[top_experts]
        if self.dispatch == "dense":
            out = self._dense(tokens, top_experts, gates)
        else:
            out = self._gather(tokens, top_experts, gates)

        slots = top_experts.numel()
        # Slots per expert from a one-hot of the choices, not bincount (which reads its max on the
        # host); float32 even under autocast: bfloat16 holds integers exactly only up to 256.
        counts = tokens.new_zeros(tokens.shape[0], self.num_total, dtype=torch.float32).scatter_(
            1, top_experts, 1.0).sum(dim=0)
        if self.over_ranks is not None:
            counts, slots = self.over_ranks.sum(counts), slots * self.over_ranks.world_size
        # Switch-style balance loss over the experts that can be chosen: N * sum_i f_i * p_i.
        aux = (len(self._live_experts) / slots) * (counts * probs.mean(dim=0)).sum()
        return (out if x.dim() == 2 else out.view(shape)), aux, RoutingStats(counts, slots)

    def _dense(self, tokens: torch.Tensor, top_experts: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """Every live expert on every token, weighted by a (tokens, experts) gate matrix that is 0
        off the top-k: fixed shapes, two matmuls, no sync. An expert a token did not choose gets
        exactly zero gradient from it, as in the gather path."""
        n, width = tokens.shape
        params = (self.experts.w_in, self.experts.b_in, self.experts.w_out, self.experts.b_out)
        # Dormant ghosts are never chosen: leave them out. Ghosts wake in order, so the live experts
        # are nearly always the first few, a slice (a view, no copy); otherwise an index.
        live = len(self._live_experts)
        if self.live_index is None or self._live_experts == list(range(live)):
            gate_matrix = tokens.new_zeros(n, live).scatter(1, top_experts, gates)
            w_in, b_in, w_out, b_out = params if live == self.num_total else (p[:live] for p in params)
        else:
            gate_matrix = tokens.new_zeros(n, self.num_total).scatter(1, top_experts, gates)
            w_in, b_in, w_out, b_out = (p.index_select(0, self.live_index) for p in params)
            gate_matrix = gate_matrix.index_select(1, self.live_index)
        # (E, n, H): every expert on every token, in one batched matmul that reads the stacked
        # weights in place (no per-step copy of them).
        h = F.gelu(torch.baddbmm(b_in.unsqueeze(1), tokens.expand(w_in.shape[0], n, width), w_in))
        h = h * gate_matrix.t().unsqueeze(-1)
        return torch.bmm(h, w_out).sum(dim=0) + gate_matrix @ b_out

    def _gather(self, tokens: torch.Tensor, top_experts: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """Each expert on the tokens that chose it: the least arithmetic, but a data-dependent
        shape (and a host sync) per expert. Right for the CPU, where neither costs anything."""
        out = torch.zeros_like(tokens)
        for expert in self._live_experts:
            token_idx, slot = torch.where(top_experts == expert)
            if token_idx.numel():
                contribution = self.experts.one(expert, tokens[token_idx]) * gates[token_idx, slot, None]
                out.index_add_(0, token_idx, contribution)
        return out

    def forced_one(self, x: torch.Tensor, expert: int) -> torch.Tensor:
        """Every token to one expert (reference path of the geometric step)."""
        shape = x.shape
        out = self.experts.one(expert, x.reshape(-1, shape[-1])) * self.gate_scale[expert]
        return out.view(shape)

    def _presentations_index(self, experts: Sequence[int]) -> tuple[int, torch.Tensor | None, torch.Tensor | None]:
        """For presentations forced to `experts`: how many are live, the live ones' expert ids (None
        when they are every expert in order) and their positions in `experts` (None when all are
        live), as device tensors made once per set of live experts."""
        key = tuple(experts)
        if key not in self._presentation_index:
            live = [p for p, expert in enumerate(experts) if expert in self._live_experts]
            device = self.gate_scale.device
            chosen = [experts[p] for p in live]
            ids = None if chosen == list(range(self.num_total)) else torch.tensor(chosen, dtype=torch.long,
                                                                                  device=device)
            positions = None if len(live) == len(experts) else torch.tensor(live, dtype=torch.long, device=device)
            self._presentation_index[key] = (len(live), ids, positions)
        return self._presentation_index[key]

    def forced_stacked(self, x: torch.Tensor, experts: Sequence[int]) -> torch.Tensor:
        """x (P*n, D) holding P presentations; presentation p goes to experts[p], all in one matmul.

        A dormant ghost's gate is 0, so its presentation's output here is exactly 0 and its expert
        would get a zero gradient: it is skipped instead of computed and multiplied by 0."""
        live, ids, positions = self._presentations_index(experts)
        if live == 0:
            return torch.zeros_like(x)
        per_presentation = x.view(len(experts), -1, x.shape[-1])
        gates = None
        if not self._live_gates_one:
            gates = self.gate_scale if ids is None else self.gate_scale.index_select(0, ids)
        if positions is None:
            return self.experts.stacked(ids, per_presentation, gates).view(x.shape)
        live_out = self.experts.stacked(ids, per_presentation.index_select(0, positions), gates)
        return torch.zeros_like(per_presentation).index_copy(0, positions, live_out).view(x.shape)
