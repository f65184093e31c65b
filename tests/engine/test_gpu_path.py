"""The GPU path, held on the CPU: the dense dispatch computes what the gather dispatch computes, and a
whole training step (or an evaluation) of every mode runs no host sync but its one record transfer,
creates no float64 tensor and stays within its launch budget."""

from __future__ import annotations

import time

import pytest
import torch

from geogui.engine.data import load_corpus
from geogui.engine.model import MoETransformer
from geogui.engine.modes import LossWeights, compute_terms
from geogui.engine.op_count import count_ops
from geogui.engine.optimizers import build_optimizers, make_fused, step_unless
from geogui.engine.rotation import DataRotator
from geogui.engine.trainer import Trainer
from geogui.settings import Mode, ModelSettings, RunSettings, Settings

# The app's depth (4 layers, 4 + 4 experts, top-2): op counts depend on the depth and the number of
# parameters, not on the widths, so small widths give the default model's counts in milliseconds.
CFG = ModelSettings(d_model=32, n_heads=4, seq_len=16, expert_hidden=32)
WEIGHTS = LossWeights(penalty=0.001, orthogonality=0.5, specialization=0.3, aux=0.01)
GHOST_STATES = {
    "dormant": [0.0, 0.0, 0.0, 0.0],
    "ramping": [1.0, 0.25, 0.0, 0.0],  # live experts a prefix, gates not all 1
    "scattered": [0.5, 0.0, 1.0, 0.0],  # live experts not a prefix: the index path
    "awake": [1.0, 1.0, 1.0, 1.0],
}
OPS_PER_STEP_BUDGET = 700  # aten ops of one whole training step on the GPU path, every mode


def set_ghosts(model: MoETransformer, activation: list[float]) -> None:
    for layer in model.moe_layers:
        layer.set_extra_state({"ghost_activation": activation, "saturation_ema": 0.0, "saturated_steps": 0})


def loss_and_gradients(model, rotator, mode, x, y):
    model.zero_grad(set_to_none=True)
    rotator.zero_grad(set_to_none=True)
    terms = compute_terms(mode, model, rotator, x, y, WEIGHTS)
    terms.loss.backward()
    params = list(model.named_parameters()) + [("rotator." + n, p) for n, p in rotator.named_parameters()]
    return terms, {n: p.grad.clone() for n, p in params if p.grad is not None}


@pytest.mark.parametrize("ghosts", GHOST_STATES)
@pytest.mark.parametrize("mode", [Mode.STANDARD, Mode.GEOMETRIC_FAST])
def test_dense_dispatch_equals_gather_dispatch(mode, ghosts):
    torch.manual_seed(0)
    model = MoETransformer(CFG, 256)
    rotator = DataRotator(CFG.presentations, CFG.rotation_dimensions, CFG.d_model, CFG.max_rotation)
    set_ghosts(model, GHOST_STATES[ghosts])
    generator = torch.Generator().manual_seed(1)
    x, y = (torch.randint(0, 256, (3, 16), generator=generator) for _ in range(2))
    results = {}
    for path in ("gather", "dense"):
        model.set_dispatch(path)
        results[path] = loss_and_gradients(model, rotator, mode, x, y)
    (gather, g_gather), (dense, g_dense) = results["gather"], results["dense"]
    assert dense.loss.item() == pytest.approx(gather.loss.item(), abs=1e-5)
    assert dense.aux_loss.item() == pytest.approx(gather.aux_loss.item(), abs=1e-6)
    assert torch.equal(dense.routing.slot_counts, gather.routing.slot_counts)
    assert g_dense.keys() == g_gather.keys()
    worst = max((g_dense[n] - g_gather[n]).abs().max().item() for n in g_gather)
    assert worst <= 1e-5
    # Not vacuous: the experts got gradient, and a dormant ghost got none on either path.
    w_in = g_dense["blocks.0.moe.experts.w_in"]
    assert w_in[0].abs().sum() > 0
    for ghost, activation in enumerate(GHOST_STATES[ghosts]):
        if activation == 0:
            assert w_in[CFG.num_experts + ghost].abs().sum() == 0


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(Settings().data, CFG.seq_len)


def counting_trainer(mode: Mode, ghosts: str, corpus) -> Trainer:
    settings = Settings(run=RunSettings(mode=mode, batch_size=2, eval_batches=2), model=CFG,
                        device={"device": "cpu"})
    trainer = Trainer(settings, corpus=corpus)
    events = trainer.run()
    next(events)  # RunStarted: the state is built
    trainer.state.model.set_dispatch("dense")  # the path a GPU takes
    set_ghosts(trainer.state.model, GHOST_STATES[ghosts])
    trainer._events = events  # keep the generator (and the run) alive for the test
    return trainer


@pytest.mark.parametrize("ghosts", ["dormant", "ramping", "awake"])
@pytest.mark.parametrize("mode", list(Mode))
def test_a_training_step_syncs_only_for_its_record(mode, ghosts, corpus):
    trainer = counting_trainer(mode, ghosts, corpus)
    state = trainer.state
    # The first step builds the optimizer state and the cached device indices: count the second.
    trainer._train_batch(state, corpus, 1, time.perf_counter())
    set_ghosts(state.model, GHOST_STATES[ghosts])  # the first step's ramp moved the ghosts on
    state.step = 1
    (record, events), counted = count_ops(lambda: trainer._train_batch(state, corpus, 2, time.perf_counter()))
    assert record is not None and record.step == 2
    assert dict(counted.syncs) == {}, counted.syncs
    assert counted.host_transfers == 1
    assert dict(counted.float64_ops) == {}
    assert counted.total <= OPS_PER_STEP_BUDGET, counted.total


@pytest.mark.parametrize("mode", list(Mode))
def test_an_evaluation_syncs_once(mode, corpus):
    trainer = counting_trainer(mode, "ramping", corpus)
    trainer._evaluate(trainer.state, corpus, 1)  # warm the cached indices
    evaluation, counted = count_ops(lambda: trainer._evaluate(trainer.state, corpus, 1))
    assert evaluation.loss > 0
    assert dict(counted.syncs) == {} and counted.host_transfers == 1
    assert dict(counted.float64_ops) == {}


def test_the_counter_sees_what_syncs():
    x = torch.randn(64)
    _, counted = count_ops(lambda: (x[x > 0], torch.where(x > 0), x.sum().item(), torch.as_tensor([1, 2]),
                                    torch.bincount(torch.tensor([1, 2])), x.to("cpu", copy=True),
                                    x.double()))
    assert counted.syncs["index[bool mask]"] == 1
    assert counted.syncs["nonzero"] == 1
    assert counted.syncs["_local_scalar_dense"] == 1
    assert counted.syncs["lift_fresh"] >= 2 and counted.syncs["bincount"] == 1
    assert counted.host_transfers == 1
    assert counted.float64_ops["_to_copy"] == 1


def small_state():
    torch.manual_seed(0)
    model = MoETransformer(ModelSettings(d_model=16, n_layers=1, n_heads=2, seq_len=8, expert_hidden=16), 256)
    rotator = DataRotator(8, 4, 16, 2.0)
    return model, rotator, build_optimizers(model, rotator, RunSettings())


def test_a_non_finite_step_is_skipped_on_the_device():
    model, rotator, (model_optimizer, _) = small_state()
    x = torch.randint(0, 256, (2, 8))
    for skip in (0.0, 1.0):  # a good step first, so that the optimizer has state to keep
        model.zero_grad()
        model(x).logits.mean().backward()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        moments = {id(p): s["exp_avg"].clone() for p, s in model_optimizer.state.items()}
        steps = [s["step"].clone() for s in model_optimizer.state.values()]
        step_unless(model_optimizer, torch.tensor(skip))
        changed = any(not torch.equal(before[n], p) for n, p in model.named_parameters())
        assert changed == (skip == 0.0)
        if skip:
            assert all(torch.equal(moments[id(p)], s["exp_avg"]) for p, s in model_optimizer.state.items())
            assert all(torch.equal(a, s["step"]) for a, s in zip(steps, model_optimizer.state.values()))
    assert not hasattr(model_optimizer, "found_inf")  # a later plain step() is not skipped


def test_optimizer_state_from_an_unfused_checkpoint_steps_fused():
    model, rotator, (model_optimizer, _) = small_state()
    # as checkpoints were written before: same groups, no fused flag
    old = torch.optim.AdamW([{"params": g["params"]} for g in model_optimizer.param_groups], lr=1e-3)
    model(torch.randint(0, 256, (2, 8))).logits.mean().backward()
    old.step()
    model_optimizer.load_state_dict(old.state_dict())
    assert not model_optimizer.param_groups[0]["fused"]
    make_fused(model_optimizer)
    assert model_optimizer.param_groups[0]["fused"]
    step_unless(model_optimizer, torch.tensor(0.0))  # the fused kernel: AssertionError if not fused
    assert all(s["step"].item() == 2 for s in model_optimizer.state.values())
