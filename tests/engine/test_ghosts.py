import numpy as np
import torch

from geogui.engine.metrics import RunEvent
from geogui.engine.moe import MoEFeedForward
from geogui.engine.routing_stats import layer_routing
from geogui.engine.trainer import Trainer
from geogui.settings import ModelSettings

from tests.conftest import tiny_settings

CFG = ModelSettings(d_model=16, n_heads=2, n_layers=1, num_experts=4, num_ghost_experts=2, top_k=2,
                    saturation_threshold=0.05, ghost_patience=3, ghost_ramp_steps=4)


def routed_overflow(layer: MoEFeedForward, x: torch.Tensor) -> float:
    _, _, stats = layer.routed(x)
    routable = layer.routable.numpy()[None]
    return float(layer_routing(stats.slot_counts.numpy()[None], routable, layer.capacity_factor,
                               layer.num_primary).overflow[0])


def test_ghosts_start_dormant_and_are_never_routed():
    torch.manual_seed(0)
    layer = MoEFeedForward(CFG)
    assert np.array_equal(layer.ghost_activation, [0.0, 0.0])
    with torch.no_grad():
        layer.router.weight[4:].fill_(0.0)
        layer.router.weight[4:, 0] = 100.0  # ghosts would win every token if they could be chosen
    _, _, stats = layer.routed(torch.randn(64, 16).abs())
    assert stats.slot_counts[4:].sum() == 0
    assert stats.slot_counts.sum() == 64 * 2


def test_balanced_routing_does_not_saturate():
    layer = MoEFeedForward(CFG)
    with torch.no_grad():
        layer.router.weight.zero_()  # equal logits: topk ties spread evenly over positions
    for _ in range(20):
        assert layer.update_ghosts(0.0) is None
    assert layer.ghost_activation.max() == 0.0


def test_ghost_wakes_when_primaries_saturate_then_ramps_to_one():
    torch.manual_seed(0)
    layer = MoEFeedForward(CFG)
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[0, 0] = 50.0  # every token's first choice is expert 0: far over capacity
        layer.router.weight[1, 0] = 40.0
    x = torch.zeros(128, 16)
    x[:, 0] = 1.0
    overflow = routed_overflow(layer, x)
    # experts 0 and 1 each get all 128 slots of 256; capacity is 1.25 * 256 / 4 = 80 -> (48 + 48) / 256
    assert overflow == (128 - 80) * 2 / 256
    woke_at = None
    for step in range(1, 30):
        woke = layer.update_ghosts(routed_overflow(layer, x))
        if woke is not None:
            woke_at = step
            break
    assert woke == 0 and woke_at is not None
    assert layer.saturation > CFG.saturation_threshold
    assert layer.ghost_activation[0] == 1 / CFG.ghost_ramp_steps
    assert layer.gate_scale[4].item() == 1 / CFG.ghost_ramp_steps and bool(layer.routable[4])
    assert not bool(layer.routable[5])
    for _ in range(CFG.ghost_ramp_steps):
        layer.update_ghosts(0.0)
    assert layer.ghost_activation[0] == 1.0  # ramped up, clamped at 1


def test_ghost_state_survives_a_state_dict_round_trip():
    layer = MoEFeedForward(CFG)
    for _ in range(10):
        layer.update_ghosts(1.0)
    copy = MoEFeedForward(CFG)
    copy.load_state_dict(layer.state_dict())
    assert np.array_equal(copy.ghost_activation, layer.ghost_activation)
    assert copy.ghost_activation.max() > 0
    assert torch.equal(copy.gate_scale, layer.gate_scale)


def test_a_training_run_reports_each_ghost_that_wakes_by_its_name():
    settings = tiny_settings(steps=3)
    # A capacity this small saturates the primaries on the first step; patience 1 wakes a ghost each step.
    settings = settings.model_copy(update={"model": settings.model.model_copy(update={
        "capacity_factor": 0.01, "saturation_threshold": 0.001, "ghost_patience": 1})})
    woke = [e.message for e in Trainer(settings).run() if isinstance(e, RunEvent) and e.event == "ghost_woke"]
    assert woke[:2] == ["layer 0: ghost expert G0 woke (primary experts saturated)",
                        "layer 1: ghost expert G0 woke (primary experts saturated)"]
    assert "layer 0: ghost expert G1 woke (primary experts saturated)" in woke
