"""The optional compiled step and bf16 autocast: fallbacks, notices, and that neither changes the loss."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import threading

import pytest
import torch
import torch._dynamo

from geogui.engine import modes
from geogui.engine.step_options import CPU_BF16_NOTICE, CompiledTerms, autocast_for
from geogui.settings import Mode, Settings, SettingsError, load_settings_file

from .test_modes import WEIGHTS, batch, build, gradients

# Measured over 4 seeds x 2 ghost states x 2 chunkings: terms agree to 8e-5, gradients to 0.75% of
# the fp32 gradient's largest entry; bf16 itself moves the gradients by as much (0.5-0.75%).
BF16_TERM_TOLERANCE = 1e-3
BF16_GRADIENT_TOLERANCE = 0.02  # of max |fp32 gradient|


@pytest.fixture
def fresh_dynamo():
    """Compiled code is cached on the functions' code objects: each test starts and ends without any."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def routing_tensors(terms: modes.LossTerms) -> list[torch.Tensor]:
    """Every router statistic of a pass (tensors and counts), whether kept per layer or stacked."""
    routing = terms.routing if isinstance(terms.routing, (list, tuple)) else [terms.routing]
    return [value for stats in routing if stats is not None for value in dataclasses.astuple(stats)]


def test_both_are_off_by_default_and_a_file_from_before_them_still_loads(tmp_path):
    assert (Settings().device.compile_step, Settings().device.precision) == (False, "fp32")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema_version": 1, "device": {"device": "cpu"}}))
    device = load_settings_file(old).device
    assert (device.device, device.compile_step, device.precision) == ("cpu", False, "fp32")
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"device": {"compile_step": True, "precision": "bf16"}}))
    assert load_settings_file(new).device.model_dump() == {"device": "auto", "compile_step": True, "precision": "bf16"}
    new.write_text(json.dumps({"device": {"precision": "fp16"}}))
    with pytest.raises(SettingsError, match="device.precision"):
        load_settings_file(new)


def test_fp32_is_a_plain_context_without_notice():
    for device in ("cpu", "cuda", "mps"):
        factory, notice = autocast_for(torch.device(device), "fp32")
        assert factory is contextlib.nullcontext and notice is None


def test_bf16_on_the_cpu_trains_in_fp32_and_says_why():
    factory, notice = autocast_for(torch.device("cpu"), "bf16")
    assert notice == CPU_BF16_NOTICE and "slower" in notice and "fp32" in notice
    with factory():
        assert not torch.is_autocast_enabled("cpu")


def test_bf16_elsewhere_falls_back_with_a_reason_and_unknown_precision_is_refused():
    factory, notice = autocast_for(torch.device("meta"), "bf16")
    assert factory is contextlib.nullcontext and "meta" in notice and "fp32" in notice
    with pytest.raises(ValueError, match="fp16"):
        autocast_for(torch.device("cpu"), "fp16")


def test_a_failing_compiler_falls_back_to_the_same_eager_result_once(fresh_dynamo):
    calls = []

    def broken_backend(graph, example_inputs):
        calls.append(len(example_inputs))
        raise RuntimeError("no compiler here\nsecond line")

    model, rotator = build()
    x, y = batch()
    compiled = CompiledTerms(backend=broken_backend)
    for mode in (Mode.GEOMETRIC, Mode.STANDARD):
        eager, g_eager = gradients(model, rotator, lambda: modes.compute_terms(mode, model, rotator, x, y, WEIGHTS))
        got, g_got = gradients(model, rotator, lambda: compiled(mode, model, rotator, x, y, WEIGHTS))
        assert torch.equal(got.stacked(), eager.stacked()), mode
        assert all(torch.equal(g_got[name], g_eager[name]) for name in g_eager), mode
        events = compiled.take_events()
        assert [event.kind for event in events] == ["compile_failed"]
        assert events[0].message.startswith(f"compiling the {mode.label.lower()} step failed")
        assert "no compiler here" in events[0].message and "\n" not in events[0].message
        assert not compiled.is_compiled(mode)
        tried = len(calls)
        compiled(mode, model, rotator, x, y, WEIGHTS)  # eager for good: the compiler is not tried again
        assert len(calls) == tried and compiled.take_events() == []


@pytest.mark.parametrize("mode", list(Mode))
def test_a_compiled_step_has_the_eager_loss_and_gradients(mode, fresh_dynamo):
    model, rotator = build()
    x, y = batch()
    compiled = CompiledTerms(backend="aot_eager")
    for _ in range(2):  # the cold call and a warm one
        got, g_got = gradients(model, rotator, lambda: compiled(mode, model, rotator, x, y, WEIGHTS))
        eager, g_eager = gradients(model, rotator,
                                   lambda: modes.compute_terms(mode, model, rotator, x, y, WEIGHTS))
        assert torch.allclose(got.stacked(), eager.stacked(), rtol=0, atol=1e-5)
        if eager.hidden_similarity is not None:
            assert torch.allclose(got.hidden_similarity, eager.hidden_similarity, atol=1e-5)
        routing = [(a, b) for a, b in zip(routing_tensors(got), routing_tensors(eager), strict=True)]
        assert all(torch.allclose(torch.as_tensor(a).float(), torch.as_tensor(b).float(), atol=1e-6)
                   for a, b in routing)
        worst = max((g_got[name] - g_eager[name]).abs().max().item() for name in g_eager)
        assert worst <= 1e-5
    events = compiled.take_events()
    assert events[0].kind == "step_compiled" and events[0].seconds > 0
    assert events[0].message == f"compiled the {mode.label.lower()} step in {events[0].seconds:.1f} s"
    assert "compile_failed" not in [event.kind for event in events]
    assert compiled.is_compiled(mode)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")  # Inductor's imports
@pytest.mark.skipif(not any(shutil.which(cc) for cc in ("c++", "g++", "clang++")),
                    reason="Inductor on the CPU needs a C++ compiler")
def test_inductor_compiles_the_geometric_step_on_a_worker_thread(fresh_dynamo):
    # The app trains on a worker thread. Cold, this takes about 35 s on 2 cores; Inductor's
    # on-disk cache makes a second run take a few.
    model, rotator = build()
    x, y = batch()
    compiled = CompiledTerms()
    result = {}

    def train_step():
        result["compiled"] = gradients(model, rotator, lambda: compiled(Mode.GEOMETRIC, model, rotator, x, y, WEIGHTS))

    worker = threading.Thread(target=train_step)
    worker.start()
    worker.join()
    got, g_got = result["compiled"]
    eager, g_eager = gradients(model, rotator,
                               lambda: modes.compute_terms(Mode.GEOMETRIC, model, rotator, x, y, WEIGHTS))
    assert [event.kind for event in compiled.take_events()] == ["step_compiled"]
    assert torch.allclose(got.stacked(), eager.stacked(), rtol=0, atol=1e-5)
    assert max((g_got[name] - g_eager[name]).abs().max().item() for name in g_eager) <= 1e-5


def test_each_mode_compiles_on_first_use_and_a_recompilation_is_reported(fresh_dynamo):
    model, rotator = build()
    x, y = batch()
    compiled = CompiledTerms(backend="aot_eager")
    compiled(Mode.STANDARD, model, rotator, x, y, WEIGHTS)
    assert [event.kind for event in compiled.take_events()] == ["step_compiled"]
    assert not compiled.is_compiled(Mode.GEOMETRIC_FAST)
    compiled(Mode.GEOMETRIC_FAST, model, rotator, x, y, WEIGHTS)
    assert [event.message.split(" in ")[0] for event in compiled.take_events()] == [
        "compiled the geometric fast step"]
    compiled(Mode.STANDARD, model, rotator, x[:2], y[:2], WEIGHTS)  # a new shape is a new graph
    assert [event.kind for event in compiled.take_events()] == ["step_recompiled"]


def test_batched_geometric_equals_the_reference_loop_under_bf16_autocast():
    model, rotator = build()  # part-awake ghosts, in chunks: every path of the batched step
    x, y = batch()
    _, g_fp32 = gradients(model, rotator, lambda: modes.geometric_terms_reference(model, rotator, x, y, WEIGHTS))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        batched, g_batched = gradients(model, rotator,
                                       lambda: modes.geometric_terms(model, rotator, x, y, WEIGHTS, 3))
        loop, g_loop = gradients(model, rotator,
                                 lambda: modes.geometric_terms_reference(model, rotator, x, y, WEIGHTS))
    assert batched.stacked().dtype == torch.float32
    assert torch.allclose(batched.stacked(), loop.stacked(), rtol=0, atol=BF16_TERM_TOLERANCE)
    scale = max(g.abs().max().item() for g in g_fp32.values())
    worst = max((g_batched[n] - g_loop[n]).abs().max().item() for n in g_loop)
    assert worst <= BF16_GRADIENT_TOLERANCE * scale
    # Not vacuous: bf16 really ran (its gradients are not the fp32 ones).
    assert max((g_loop[n] - g_fp32[n]).abs().max().item() for n in g_loop) > 1e-3 * scale


def test_more_recompilations_than_dynamos_default_limit_all_compile(fresh_dynamo):
    # A run's ghost wake-ups each change a list the forward pass reads (as `_live_experts` does).
    class Model:
        live: list[int]

    def terms(mode, model, rotator, x, y, weights, chunk):
        for expert in model.live:
            x = x + expert
        return x

    model, x = Model(), torch.zeros(3)
    compiled = CompiledTerms(terms, backend="eager")
    wakeups = torch._dynamo.config.recompile_limit + 4
    for awake in range(1, wakeups + 2):
        model.live = list(range(awake))
        assert torch.equal(compiled(Mode.STANDARD, model, None, x, None, None), x + sum(model.live))
    kinds = [event.kind for event in compiled.take_events()]
    assert kinds == ["step_compiled"] + ["step_recompiled"] * wakeups


def test_an_error_of_the_step_itself_reaches_the_caller_and_leaves_compilation_on(fresh_dynamo):
    failing = [True]

    def terms(mode, model, rotator, x, y, weights, chunk):
        if failing[0]:
            raise MemoryError("out of memory")
        return x * 2

    compiled = CompiledTerms(terms, backend="eager")
    with pytest.raises(MemoryError):
        compiled(Mode.GEOMETRIC, None, None, torch.ones(2), None, None)
    assert compiled.take_events() == []
    failing[0] = False
    assert torch.equal(compiled(Mode.GEOMETRIC, None, None, torch.ones(2), None, None), torch.full((2,), 2.0))
    assert [event.kind for event in compiled.take_events()] == ["step_compiled"]
    assert compiled.is_compiled(Mode.GEOMETRIC)


def test_the_trainer_logs_the_compile_time_and_the_precision_notice(monkeypatch, fresh_dynamo):
    import functools

    from geogui.engine import trainer as trainer_module
    from geogui.engine.metrics import BatchRecord, RunEvent
    from geogui.engine.trainer import Trainer

    from tests.conftest import tiny_settings

    # aot_eager: the trainer's compile path end to end, without a C++ compiler's half minute
    monkeypatch.setattr(trainer_module, "CompiledTerms", functools.partial(CompiledTerms, backend="aot_eager"))
    settings = tiny_settings(steps=3, mode="geometric").model_copy(
        update={"device": Settings().device.model_copy(update={"device": "cpu", "compile_step": True,
                                                               "precision": "bf16"})})
    events = list(Trainer(settings).run())
    kinds = [(e.step, e.event) for e in events if isinstance(e, RunEvent)]
    assert (0, "precision_fallback") in kinds
    assert (1, "step_compiled") in kinds and [k for _, k in kinds].count("step_compiled") == 1
    compiled = next(e for e in events if isinstance(e, RunEvent) and e.event == "step_compiled")
    assert "compiled the geometric step in" in compiled.message
    assert [e.step for e in events if isinstance(e, BatchRecord)] == [1, 2, 3]
