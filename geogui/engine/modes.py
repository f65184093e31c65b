"""The loss of one batch in each training mode.

standard
    One routed forward pass. loss = CE + aux, where aux = aux_loss_weight * load-balancing loss.
geometric_fast (the published fix)
    One routed forward pass, untouched by the rotations. loss = CE + aux + penalty, where
    penalty = penalty_weight * mean(angles**2). The rotator's only gradient is the penalty's, so
    in this mode the rotations are regularised (pulled towards zero), never learned from data.
geometric (the full step)
    Presentation p rotates the token embeddings by R_p and runs the whole model with every MoE
    layer forced to expert p (ghost presentations to their ghost expert, gated by its activation).
    With logits_p (B, T, V) and final hidden states h_p (B, T, D) (the residual stream before the
    last norm):
      task           = CE(mean_p logits_p, targets)
      penalty        = penalty_weight * mean(angles**2)
      orthogonality  = orthogonality_weight * mean over tokens and pairs p != q of |cos(h_p, h_q)|
                       (presentations should see the data differently)
      specialization = specialization_weight * relu(1 - mean over tokens of Var_p(||h_p||))
                       (population variance across presentations; pushes presentations apart in scale)
      loss = task + penalty + orthogonality + specialization
    Two implementations: `geometric_terms` runs all presentations in one batched pass (in chunks of
    `presentation_chunk` when set), `geometric_terms_reference` is the plain per-presentation loop.
    They compute the same function; a test holds their gradients equal to 1e-5.

No term is ever replaced when it is not finite: the trainer checks and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from geogui.engine.model import MoETransformer
from geogui.engine.moe import RoutingStats
from geogui.engine.rotation import DataRotator
from geogui.settings import Mode, ModelSettings, RunSettings

TERM_NAMES = ("loss", "task_loss", "aux_loss", "penalty", "orthogonality", "specialization")


@dataclass
class LossTerms:
    loss: torch.Tensor
    task_loss: torch.Tensor
    aux_loss: torch.Tensor
    penalty: torch.Tensor
    orthogonality: torch.Tensor
    specialization: torch.Tensor
    routing: RoutingStats | None  # every layer's; None when routing was forced
    # geometric: (P, P) mean over tokens of |cos(h_p, h_q)| of the presentations' final hidden
    # states, the orthogonality term per pair, measured in the step; None in the routed modes
    hidden_similarity: torch.Tensor | None = None

    def stacked(self) -> torch.Tensor:
        """All scalar terms in TERM_NAMES order, so they reach the host in one transfer."""
        return torch.stack([getattr(self, name).detach().float() for name in TERM_NAMES])


@dataclass(frozen=True)
class LossWeights:
    penalty: float
    orthogonality: float
    specialization: float
    aux: float

    @classmethod
    def from_settings(cls, run: RunSettings, model: ModelSettings) -> "LossWeights":
        return cls(run.penalty_weight, run.orthogonality_weight, run.specialization_weight, model.aux_loss_weight)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def rotation_penalty(rotator: DataRotator, weight: float) -> torch.Tensor:
    return weight * rotator.angles().pow(2).mean()


def _routed_terms(model: MoETransformer, x, y, weights: LossWeights, penalty: torch.Tensor) -> LossTerms:
    out = model(x)
    task = cross_entropy(out.logits, y)
    aux = weights.aux * out.aux_loss
    zero = task.new_zeros(())
    return LossTerms(task + aux + penalty, task, aux, penalty, zero, zero, out.routing)


def standard_terms(model: MoETransformer, x, y, weights: LossWeights) -> LossTerms:
    return _routed_terms(model, x, y, weights, x.new_zeros((), dtype=torch.float32))


def geometric_fast_terms(model: MoETransformer, rotator: DataRotator, x, y, weights: LossWeights) -> LossTerms:
    return _routed_terms(model, x, y, weights, rotation_penalty(rotator, weights.penalty))


def presentation_experts(model: MoETransformer) -> list[int]:
    """Presentation p is forced to expert p: primaries first, then ghosts (same order as the router)."""
    return list(range(model.moe_layers[0].num_total))


def _geometric_from_outputs(mean_logits, hidden, y, rotator, weights) -> LossTerms:
    """mean_logits (B, T, V) = mean over presentations, hidden (P, B, T, D) -> the geometric loss terms."""
    task = cross_entropy(mean_logits, y)
    penalty = rotation_penalty(rotator, weights.penalty)
    presentations = hidden.shape[0]
    if presentations > 1:
        # Cosines from the (B, T, P, P) Gram matrix and the norms: no normalised copy of `hidden`.
        gram = torch.einsum("pbtd,qbtd->btpq", hidden, hidden)
        norms = hidden.norm(dim=-1)  # (P, B, T)
        norms_bt = norms.permute(1, 2, 0)
        cosines = gram / (norms_bt.unsqueeze(-1) * norms_bt.unsqueeze(-2)).clamp_min(1e-12)
        # The off-diagonal pairs by a 0/1 mask product, not boolean indexing (a host sync on a GPU).
        off_diagonal = 1.0 - torch.eye(presentations, dtype=cosines.dtype, device=hidden.device)
        similarity = cosines.abs().mean(dim=(0, 1))  # (P, P): each pair's term, kept for the record
        pairs = presentations * (presentations - 1)
        orthogonality = weights.orthogonality * (similarity * off_diagonal).sum() / pairs
        norm_variance = norms.var(dim=0, unbiased=False).mean()
        specialization = weights.specialization * F.relu(1.0 - norm_variance)
    else:  # one presentation has nothing to be orthogonal to or to differ from
        orthogonality = specialization = task.new_zeros(())
        similarity = task.new_ones((1, 1))
    loss = task + penalty + orthogonality + specialization
    return LossTerms(loss, task, task.new_zeros(()), penalty, orthogonality, specialization, None, similarity)


def geometric_terms(
    model: MoETransformer, rotator: DataRotator, x, y, weights: LossWeights, chunk: int = 0
) -> LossTerms:
    """The production geometric step: all presentations batched into one pass (or `chunk` at a time),
    and the LM head applied once to the mean of the normalised hidden states (see `mean_logits`)."""
    experts = presentation_experts(model)
    angles = rotator.angles()
    embeddings = model.embed_tokens(x).unsqueeze(0)
    step = chunk or len(experts)
    hidden = [
        model.forward_presentations(
            rotator.rotate(embeddings, angles[start:start + step, None, None, :]), experts[start:start + step]
        )
        for start in range(0, len(experts), step)
    ]
    hidden = hidden[0] if len(hidden) == 1 else torch.cat(hidden)
    return _geometric_from_outputs(model.mean_logits(hidden), hidden, y, rotator, weights)


def geometric_terms_reference(model: MoETransformer, rotator: DataRotator, x, y, weights: LossWeights) -> LossTerms:
    """The original geometric step: one full forward pass per presentation, in a plain loop, each
    producing its own logits, which are then averaged."""
    angles = rotator.angles()
    embeddings = model.embed_tokens(x)
    logits, hidden = [], []
    for presentation, expert in enumerate(presentation_experts(model)):
        out = model.forward_presentation(rotator.rotate(embeddings, angles[presentation]), expert)
        logits.append(out.logits)
        hidden.append(out.hidden)
    return _geometric_from_outputs(torch.stack(logits).mean(dim=0), torch.stack(hidden), y, rotator, weights)


def compute_terms(
    mode: Mode, model: MoETransformer, rotator: DataRotator, x, y, weights: LossWeights, chunk: int = 0
) -> LossTerms:
    if mode is Mode.STANDARD:
        return standard_terms(model, x, y, weights)
    if mode is Mode.GEOMETRIC_FAST:
        return geometric_fast_terms(model, rotator, x, y, weights)
    return geometric_terms(model, rotator, x, y, weights, chunk)
