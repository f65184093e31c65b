import math
import threading
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from geogui.engine import device as device_module
from geogui.engine.metrics import BatchRecord, EvalRecord, ModeChange, RunEvent, RunFinished, RunStarted
from geogui.engine.modes import TERM_NAMES
from geogui.engine.step_values import StepLayout, StepValues
from geogui.engine.trainer import Trainer
from geogui.engine.transfer import PackedLayout, to_host
from geogui.settings import Mode

from tests.conftest import tiny_settings


def batches(events):
    return [e for e in events if isinstance(e, BatchRecord)]


def test_a_run_yields_typed_plain_records(tiny):
    events = list(Trainer(tiny).run())
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert events[-1].status == "finished" and events[-1].step == 20
    records = batches(events)
    assert [r.step for r in records] == list(range(1, 21))
    assert [e.step for e in events if isinstance(e, EvalRecord)] == [10, 20]
    for record in records:
        for name in record.__slots__:
            assert not isinstance(getattr(record, name), torch.Tensor), name
        assert record.rotation_angles.shape == (8, 4)
        assert record.expert_load.shape == (8,) and record.expert_load.sum() == pytest.approx(1.0)
        assert record.ghost_activation.shape == (4,)
        assert record.batch_time_s > 0 and record.tokens_per_s > 0 and record.memory_bytes > 0
        assert record.loss == pytest.approx(record.task_loss + record.aux_loss + record.penalty, rel=1e-5)
    assert records[-1].tokens_seen == 20 * 4 * 32


def test_seeded_runs_are_reproducible_on_cpu():
    first = [r.loss for r in batches(Trainer(tiny_settings(steps=8)).run())]
    second = [r.loss for r in batches(Trainer(tiny_settings(steps=8)).run())]
    other_seed = [r.loss for r in batches(Trainer(tiny_settings(steps=8, seed=7)).run())]
    assert first == second
    assert first != other_seed


def test_mode_switch_keeps_weights_and_optimizer_state():
    trainer = Trainer(tiny_settings(steps=12, mode="geometric_fast"))
    seen = []
    snapshot = {}
    for event in trainer.run():
        seen.append(event)
        if isinstance(event, BatchRecord) and event.step == 5:
            state = trainer.state
            snapshot["weights"] = {k: v.clone() for k, v in state.model.state_dict().items() if torch.is_tensor(v)}
            snapshot["theta"] = state.rotator.theta.detach().clone()
            snapshot["adam_step"] = max(s["step"].item() for s in state.model_optimizer.state.values())
            trainer.request_mode(Mode.STANDARD)
        if isinstance(event, ModeChange) and event.mode == "standard":
            state = trainer.state  # at the boundary, before step 6 trains
            for key, value in snapshot["weights"].items():
                assert torch.equal(state.model.state_dict()[key], value), key
                assert isinstance(state.model.state_dict()[key], torch.Tensor)
            assert max(s["step"].item() for s in state.model_optimizer.state.values()) == snapshot["adam_step"] == 5
        if isinstance(event, BatchRecord) and event.step == 8:
            # The rotator was kept, untouched, through the standard segment (steps 6-8).
            assert torch.equal(trainer.state.rotator.theta.detach(), snapshot["theta"])
            trainer.request_mode(Mode.GEOMETRIC)
    changes = [e for e in seen if isinstance(e, ModeChange)]
    assert [(c.step, c.previous_mode, c.mode) for c in changes] == [
        (6, "geometric_fast", "standard"), (9, "standard", "geometric")]
    modes = [r.mode for r in batches(seen)]
    assert modes == ["geometric_fast"] * 5 + ["standard"] * 3 + ["geometric"] * 4
    standard = [r for r in batches(seen) if r.mode == "standard"]
    assert all(r.rotation_angles is None and r.penalty == 0 and r.lr_rotation == 0 for r in standard)
    # ...and trains again in geometric mode.
    assert not torch.equal(trainer.state.rotator.theta.detach(), snapshot["theta"])
    geometric = [r for r in batches(seen) if r.mode == "geometric"]
    assert all(r.orthogonality > 0 and r.aux_loss == 0 for r in geometric)
    assert geometric[0].expert_load == pytest.approx(np.full(8, 1 / 8))


def test_rotator_is_kept_unchanged_while_in_standard():
    trainer = Trainer(tiny_settings(steps=6, mode="standard"))
    thetas = []
    for event in trainer.run():
        if isinstance(event, BatchRecord):
            thetas.append(trainer.state.rotator.theta.detach().clone())
    assert all(torch.equal(thetas[0], t) for t in thetas)


def test_penalty_weight_change_applies_at_the_next_batch():
    trainer = Trainer(tiny_settings(steps=6))
    records = []
    for event in trainer.run():
        if isinstance(event, BatchRecord):
            records.append(event)
            if event.step == 3:
                trainer.request_penalty_weight(0.5)
    assert [r.penalty_weight for r in records] == [0.001] * 3 + [0.5] * 3
    angles = records[4].rotation_angles
    assert records[4].penalty == pytest.approx(0.5 * float(np.mean(angles ** 2)), rel=1e-3)
    with pytest.raises(ValueError):
        trainer.request_penalty_weight(float("nan"))


def test_stop_acts_within_one_batch():
    trainer = Trainer(tiny_settings(steps=1000))
    steps = []
    for event in trainer.run():
        if isinstance(event, BatchRecord):
            steps.append(event.step)
            if event.step == 3:
                trainer.stop()
        if isinstance(event, RunFinished):
            assert event.status == "stopped" and event.step == 3
    assert steps == [1, 2, 3]


def test_pause_blocks_between_batches_until_resumed():
    trainer = Trainer(tiny_settings(steps=6))
    events = []
    resumed = threading.Event()

    def consume():
        for event in trainer.run():
            events.append(event)
            if isinstance(event, BatchRecord) and event.step == 2:
                trainer.pause()
            if isinstance(event, RunEvent) and event.event == "paused":
                resumed.set()

    worker = threading.Thread(target=consume)
    worker.start()
    assert resumed.wait(timeout=60)
    assert trainer.paused
    count = len(batches(events))
    assert count == 2  # nothing trains while paused
    trainer.resume()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert [r.step for r in batches(events)] == list(range(1, 7))
    kinds = [e.event for e in events if isinstance(e, RunEvent)]
    assert kinds == ["paused", "resumed"]


def test_stop_while_paused_ends_the_run():
    trainer = Trainer(tiny_settings(steps=50))
    result = []

    def consume():
        for event in trainer.run():
            if isinstance(event, BatchRecord) and event.step == 1:
                trainer.pause()
            if isinstance(event, RunEvent) and event.event == "paused":
                trainer.stop()
            result.append(event)

    worker = threading.Thread(target=consume)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert result[-1] == RunFinished(1, "stopped")


def diverge_after_step(trainer, event, step):
    """Simulate a divergence: weights blown to inf, as a too-high learning rate eventually does."""
    if isinstance(event, BatchRecord) and event.step == step:
        with torch.no_grad():
            trainer.state.model.lm_head.weight.fill_(float("inf"))


def test_non_finite_loss_is_reported_and_pauses():
    trainer = Trainer(tiny_settings(steps=30))
    events = []
    for event in trainer.run():
        events.append(event)
        diverge_after_step(trainer, event, 3)
        if isinstance(event, RunEvent) and event.event == "paused":
            trainer.stop()  # a real user decides; the test just ends the run
    reports = [e for e in events if isinstance(e, RunEvent) and e.event == "nonfinite_loss"]
    assert len(reports) == 1 and reports[0].step == 4
    assert "update was skipped" in reports[0].message and "step 4" in reports[0].message
    assert "task_loss = nan" in reports[0].message
    assert all(math.isfinite(r.loss) for r in batches(events))  # a skipped batch is not recorded as 0
    assert events[-1].status == "stopped"


def test_non_finite_loss_can_end_the_run_as_failed():
    trainer = Trainer(tiny_settings(steps=30), on_nonfinite="stop")
    events = []
    for event in trainer.run():
        events.append(event)
        diverge_after_step(trainer, event, 2)
    assert events[-1] == RunFinished(2, "failed")
    assert any(isinstance(e, RunEvent) and e.event == "nonfinite_loss" for e in events)


def test_unavailable_device_falls_back_to_cpu_visibly(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    settings = tiny_settings(steps=2).model_copy(update={"device": tiny_settings().device.model_copy(
        update={"device": "cuda"})})
    events = list(Trainer(settings).run())
    started = events[0]
    assert started.device == "cpu" and started.requested_device == "cuda"
    fallback = [e for e in events if isinstance(e, RunEvent) and e.event == "device_fallback"]
    assert len(fallback) == 1 and "cuda is not available" in fallback[0].message
    assert events[-1].status == "finished"


def test_device_that_fails_its_probe_falls_back(monkeypatch):
    monkeypatch.setattr(device_module, "_mps_available", lambda: True)

    def broken(device):
        raise RuntimeError("MPS backend out of order")

    monkeypatch.setattr(device_module, "_probe", broken)
    choice = device_module.choose_device("auto")
    assert choice.device.type == "cpu"
    assert "mps failed (MPS backend out of order)" in choice.fallback_reason
    assert device_module.choose_device("cpu").fallback_reason is None


def test_a_packed_layout_gives_the_values_back_by_name():
    @dataclass(frozen=True)
    class Values:
        loss: float
        norm: float
        slots: np.ndarray
        angles: np.ndarray

    layout = PackedLayout(Values, [("loss", ()), ("norm", ()), ("slots", (3,)), ("angles", (2, 2))])
    assert layout.width == 9 and layout.span("loss", "norm") == slice(0, 2)
    packed = layout.pack(loss=torch.tensor(1.5, dtype=torch.bfloat16), norm=torch.tensor(float("inf")),
                         slots=torch.tensor([1.0, 2.0, 3.0]), angles=torch.arange(4.0).view(2, 2))
    assert packed.dtype == torch.float32 and packed.shape == (9,)
    values = layout.unpack(to_host(packed))
    assert values.loss == 1.5 and values.norm == math.inf
    assert values.slots.dtype == np.float64 and values.slots.tolist() == [1.0, 2.0, 3.0]
    assert values.angles.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    with pytest.raises(ValueError, match="slots: expected shape"):
        layout.pack(loss=torch.tensor(0.0), norm=torch.tensor(0.0), slots=torch.zeros(4), angles=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="expected the parts"):
        layout.pack(loss=torch.tensor(0.0))


def test_a_step_layout_checks_the_terms_and_the_gradient_norm():
    cfg = tiny_settings().model
    layout = StepLayout(cfg)
    assert layout.checked == slice(0, len(TERM_NAMES) + 1)
    head = len(TERM_NAMES) + 1 + cfg.presentations * cfg.rotation_dimensions
    for routed, extra in ((True, cfg.n_layers * cfg.presentations), (False, cfg.presentations ** 2)):
        width = head + extra
        values = layout.unpack(np.arange(width, dtype=np.float64), routed=routed)
        assert [getattr(values, name) for name in TERM_NAMES] == list(range(len(TERM_NAMES)))
        assert values.grad_norm == len(TERM_NAMES)
        assert values.angles.shape == (cfg.presentations, cfg.rotation_dimensions)
        assert values.angles[-1, -1] == head - 1
        if routed:  # the routed slots of every (layer, expert); the geometric step's pair similarity
            assert values.layer_slots.shape == (cfg.n_layers, cfg.presentations) and values.hidden_similarity is None
            assert values.layer_slots[-1, -1] == width - 1
        else:
            assert values.hidden_similarity.shape == (cfg.presentations,) * 2 and values.layer_slots is None
    bad = StepValues(1.0, math.nan, 1.0, 1.0, 1.0, 1.0, math.inf, np.zeros(0))
    assert bad.nonfinite() == ["task_loss = nan", "gradient norm = inf"]
