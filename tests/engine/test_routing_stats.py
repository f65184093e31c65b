"""The per-layer routing numbers of each batch record, against hand computations, and the notice
of an expert that stays dead."""

import math

import numpy as np
import pytest
import torch

from geogui.engine import modes
from geogui.engine.metrics import BatchRecord, EventKind, RunEvent
from geogui.engine.model import MoETransformer
from geogui.engine.modes import LossWeights
from geogui.engine.rotation import DataRotator
from geogui.engine.routing_stats import DeadExperts, layer_routing
from geogui.engine.trainer import Trainer
from geogui.settings import Settings

from tests.conftest import tiny_settings


def test_utilization_entropy_and_overflow_by_hand():
    slots = np.array([[6.0, 2.0, 0.0, 0.0, 0.0, 0.0],  # 4 primaries routable, the 2 ghosts dormant
                      [2.0, 2.0, 2.0, 2.0, 0.0, 0.0]])
    routable = np.array([[True] * 4 + [False] * 2, [True] * 4 + [False] * 2])
    routing = layer_routing(slots, routable, capacity_factor=1.25, num_primary=4)
    # layer 0: 8 slots over 4 experts, a fair share of 2 each
    assert np.allclose(routing.utilization[0, :4], [3.0, 1.0, 0.0, 0.0])
    assert np.isnan(routing.utilization[:, 4:]).all()  # a dormant ghost is neither dead nor alive
    assert routing.entropy[0] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(4))
    assert routing.overflow[0] == pytest.approx((6 - 1.25 * 8 / 4) / 8)  # capacity 2.5: 3.5 of 8 slots over
    # layer 1: perfectly even
    assert np.allclose(routing.utilization[1, :4], 1.0) and routing.entropy[1] == pytest.approx(1.0)
    assert routing.overflow[1] == 0.0


def test_a_woken_ghost_counts_in_the_fair_share():
    slots = np.array([[3.0, 3.0, 3.0, 3.0, 4.0]])
    routing = layer_routing(slots, np.ones((1, 5), dtype=bool), capacity_factor=1.0, num_primary=4)
    assert np.allclose(routing.utilization[0], np.array([3, 3, 3, 3, 4]) / (16 / 5))
    assert routing.utilization[0].mean() == pytest.approx(1.0)


def test_the_dead_expert_notice_comes_once_per_dead_spell():
    dead = DeadExperts(layers=1, experts=3, patience=3)
    alive, expert_2_dead = np.array([[1.0, 1.0, 1.0]]), np.array([[1.5, 1.5, 0.0]])
    assert [dead.update(expert_2_dead) for _ in range(3)] == [[], [], [(0, 2, 3)]]
    assert dead.update(expert_2_dead) == []  # said once
    dead.update(alive)  # it was chosen again: a new dead spell is told again
    assert [dead.update(expert_2_dead) for _ in range(3)][-1] == [(0, 2, 3)]
    assert DeadExperts(1, 3, 0).update(expert_2_dead) == []  # 0 = never
    assert DeadExperts(1, 2, 1).update(np.array([[2.0, np.nan]])) == []  # a dormant ghost is not dead


def forced_settings(steps: int = 5) -> Settings:
    settings = tiny_settings(steps=steps, dead_expert_steps=3, mode="standard", eval_interval=100)
    # top-1 routing, and no ghost waking while every token goes to one expert
    model = settings.model.model_copy(update={"top_k": 1, "ghost_patience": 100_000})
    return settings.model_copy(update={"model": model})


def test_a_router_forced_to_one_expert_shows_it_at_n_times_its_share_and_the_others_dead():
    settings = forced_settings()
    trainer = Trainer(settings)
    records, events = [], []
    for event in trainer.run():
        if event.kind == "started":
            for layer in trainer.state.model.moe_layers:  # every token's top logit: expert 0
                layer.route_mask[0] += 1e4
        elif isinstance(event, BatchRecord):
            records.append(event)
        elif isinstance(event, RunEvent):
            events.append(event)
    cfg = settings.model
    primaries = cfg.num_experts
    for record in records:
        assert record.expert_utilization.shape == (cfg.n_layers, cfg.presentations)
        assert np.allclose(record.expert_utilization[:, 0], primaries)  # all slots: N fair shares
        assert np.all(record.expert_utilization[:, 1:primaries] == 0)
        assert np.isnan(record.expert_utilization[:, primaries:]).all()
        assert np.allclose(record.routing_entropy, 0.0)
        capacity_share = cfg.capacity_factor / primaries
        assert np.allclose(record.layer_overflow, 1 - capacity_share)
        assert record.hidden_similarity is None
    dead = [e for e in events if e.event == EventKind.EXPERT_DEAD]
    assert sorted((e.step, e.message) for e in dead) == sorted(
        (3, f"layer {layer}: expert E{expert} has had no tokens for 3 steps")
        for layer in range(cfg.n_layers) for expert in range(1, primaries))


def test_routed_records_have_the_layers_numbers_and_geometric_ones_the_similarity():
    for mode in ("standard", "geometric_fast", "geometric"):
        settings = tiny_settings(steps=2, mode=mode)
        records = [e for e in Trainer(settings).run() if isinstance(e, BatchRecord)]
        cfg = settings.model
        for record in records:
            if mode == "geometric":
                assert record.expert_utilization is None and record.routing_entropy is None
                assert record.layer_overflow is None
                similarity = record.hidden_similarity
                assert similarity.shape == (cfg.presentations,) * 2
                assert np.allclose(similarity, similarity.T, atol=1e-6) and np.allclose(np.diag(similarity), 1, atol=1e-5)
                off = similarity[~np.eye(cfg.presentations, dtype=bool)].mean()
                assert record.orthogonality == pytest.approx(settings.run.orthogonality_weight * off, rel=1e-4)
            else:
                live = ~np.isnan(record.expert_utilization)
                assert np.allclose([row[mask].mean() for row, mask in zip(record.expert_utilization, live)], 1.0)
                assert np.all((record.routing_entropy > 0) & (record.routing_entropy <= 1 + 1e-9))
                assert record.hidden_similarity is None


def test_the_hidden_similarity_is_each_pairs_mean_absolute_cosine():
    cfg = tiny_settings().model
    torch.manual_seed(0)
    model = MoETransformer(cfg, 256)
    rotator = DataRotator(cfg.presentations, cfg.rotation_dimensions, cfg.d_model, cfg.max_rotation)
    x = torch.randint(0, 256, (2, 16))
    y = torch.randint(0, 256, (2, 16))
    weights = LossWeights(0.001, 0.5, 0.3, 0.01)
    terms = modes.geometric_terms(model, rotator, x, y, weights)
    angles = rotator.angles()
    embeddings = model.embed_tokens(x)
    hidden = torch.stack([model.forward_presentation(rotator.rotate(embeddings, angles[p]), p).hidden
                          for p in range(cfg.presentations)])  # (P, B, T, D), the plain loop
    unit = hidden / hidden.norm(dim=-1, keepdim=True)
    by_hand = torch.einsum("pbtd,qbtd->pqbt", unit, unit).abs().mean(dim=(2, 3))
    assert torch.allclose(terms.hidden_similarity, by_hand, atol=1e-5)
    assert terms.orthogonality.item() == pytest.approx(
        0.5 * by_hand[~torch.eye(cfg.presentations, dtype=torch.bool)].mean().item(), rel=1e-5)
