"""Compare modes, headless: one group of three runs from identical initial weights and seed, at equal
steps or at an equal wall-time budget (the clock injected)."""

from __future__ import annotations

import itertools
from contextlib import closing

import pytest
import torch

from geogui.engine.metrics import BatchRecord, EvalRecord, RunStarted
from geogui.engine.samples import AccuracyRecord
from geogui.rundir.meta import RunStatus, read_meta
from geogui.rundir.mode_comparison import (
    BUDGET_REACHED,
    INITIAL_STATE_FILE,
    ComparisonBudget,
    plan_comparison,
)
from geogui.rundir.reader import read_records
from tests.conftest import tiny_settings


def _train(plan, clock=None):
    """Each leg as geogui-train drives it; per leg, its weights as they stood before step 1 and its first batch."""
    starts, first_batches, drivers = {}, {}, []
    for leg in plan.legs:
        driver = plan.driver(leg) if clock is None else plan.driver(leg, clock())
        driver.prepare()
        driver.open_log()
        driver.build_trainer(on_nonfinite="stop")
        with closing(driver.run()) as events:
            for event in events:
                if isinstance(event, RunStarted):
                    weights = driver.trainer.state.model.state_dict()
                    starts[leg.mode] = {k: v.clone() for k, v in weights.items() if isinstance(v, torch.Tensor)}
                elif isinstance(event, BatchRecord) and event.step == 1:
                    first_batches[leg.mode] = event
        drivers.append(driver)
    return starts, first_batches, drivers


def test_the_three_runs_start_from_the_same_weights_even_where_each_would_build_its_own(tmp_path, monkeypatch):
    # A device (or mode) that builds the model differently each time: the seed alone would not do.
    from geogui.engine import trainer as trainer_module

    build, calls = trainer_module.build_state, itertools.count()

    def build_differently(settings, device):
        state = build(settings, device)
        with torch.no_grad():
            for parameter in state.model.parameters():
                parameter.add_(0.1 * next(calls))
        return state

    monkeypatch.setattr(trainer_module, "build_state", build_differently)
    plan = plan_comparison(tiny_settings(steps=3, seed=7), ComparisonBudget(kind="steps", steps=3), tmp_path)
    starts, first, _ = _train(plan)

    reference = starts[plan.legs[0].mode]
    for leg in plan.legs[1:]:
        for name, tensor in reference.items():
            assert torch.equal(starts[leg.mode][name], tensor), (leg.mode, name)
    assert (plan.group_dir / INITIAL_STATE_FILE).is_file()
    # standard and geometric_fast share the forward pass: the same weights and batch give the same loss
    standard, fast = first[plan.legs[0].mode], first[plan.legs[1].mode]
    assert fast.task_loss == pytest.approx(standard.task_loss, rel=1e-6)


def test_each_run_names_its_mode_and_group_and_keeps_the_seed(tmp_path):
    plan = plan_comparison(tiny_settings(steps=2, seed=11), ComparisonBudget(kind="steps", steps=2), tmp_path)
    _train(plan)
    modes = []
    for leg in plan.legs:
        meta = read_meta(leg.run_dir)
        assert leg.mode.value in meta.name and meta.group == plan.group  # an extra key, kept
        assert meta.comparison["mode"] == leg.mode.value and meta.comparison["budget"] == "steps"
        assert meta.settings["run"]["seed"] == 11 and meta.steps_done == 2
        assert meta.status is RunStatus.FINISHED
        modes.append(meta.initial_mode)
    assert modes == ["standard", "geometric_fast", "geometric"]


def test_equal_wall_time_stops_each_run_cleanly_at_its_budget(tmp_path):
    def ticking_clock():  # one second per reading: the start, then one reading after each batch
        ticks = itertools.count()
        return lambda: float(next(ticks))

    budget = ComparisonBudget(kind="wall_time", seconds=3.5, steps=50)
    plan = plan_comparison(tiny_settings(steps=50), budget, tmp_path)
    _, _, drivers = _train(plan, ticking_clock)
    for leg, driver in zip(plan.legs, drivers):
        meta = read_meta(leg.run_dir)
        assert meta.status is RunStatus.STOPPED and meta.error is None
        assert meta.steps_done == 4 and meta.stopped_at_budget is True and driver.stopped_at_budget
        assert [event.event for event in meta.events].count(BUDGET_REACHED) == 1
        assert meta.settings["run"]["steps"] == 50  # the upper bound
        records = read_records(leg.run_dir)
        assert [record.step for record in records if isinstance(record, BatchRecord)] == [1, 2, 3, 4]
        assert [record.step for record in records if isinstance(record, EvalRecord)] == [4]  # where it stopped


def test_a_taken_group_name_gets_a_number(tmp_path):
    settings, budget = tiny_settings(), ComparisonBudget(kind="steps", steps=5)
    (tmp_path / "compare-x-standard").mkdir()
    plan = plan_comparison(settings, budget, tmp_path, group="compare-x")
    assert plan.group == "compare-x-2"
    assert [leg.run_dir.name for leg in plan.legs] == [
        "compare-x-2-standard", "compare-x-2-geometric_fast", "compare-x-2-geometric"]
    assert all(leg.settings.run.steps == 5 for leg in plan.legs)


def test_a_budget_needs_its_amount():
    with pytest.raises(ValueError):
        ComparisonBudget(kind="wall_time", steps=10)
    with pytest.raises(ValueError):
        ComparisonBudget(kind="steps", seconds=10)


def test_a_run_stopped_at_its_budget_has_its_answer_accuracy_checked_where_it_stopped(tmp_path):
    ticks = itertools.count()
    budget = ComparisonBudget(kind="wall_time", seconds=3.5, steps=50)
    settings = tiny_settings(steps=50, eval_interval=4)  # step 4 is evaluated by the trainer itself
    settings = settings.model_copy(update={"sampling": settings.sampling.model_copy(
        update={"accuracy_questions": 2, "accuracy_interval": 1000, "answer_bytes": 8})})
    plan = plan_comparison(settings, budget, tmp_path)
    _train(plan, lambda: (lambda: float(next(ticks))))
    for leg in plan.legs:
        records = read_records(leg.run_dir)
        accuracies = [r for r in records if isinstance(r, AccuracyRecord)]
        stopped_at = max(r.step for r in records if isinstance(r, BatchRecord))
        # one check at the step it stopped at, not two: the trainer's evaluation there did not check it
        assert [(a.step, a.mode, a.asked) for a in accuracies] == [(stopped_at, leg.mode.value, 2)]
        assert [r.step for r in records if isinstance(r, EvalRecord)].count(stopped_at) == 1
