"""Generation: greedy equals a plain full-window forward loop in every mode, with or without the
cache and past seq_len, for the exact sliding window and for a strided one; the stride saves full
passes; sampling is reproducible; stop and the experts record."""

import numpy as np
import pytest
import torch

import geogui.engine.model as model_module
from geogui.engine.generation import NOT_ROUTED, generate
from geogui.engine.modes import presentation_experts
from geogui.engine.state import build_state
from geogui.settings import Mode, SamplingSettings
from tests.conftest import tiny_settings

PROMPT = "Q: ((λx.x) a)\nReasoning:\n"


@pytest.fixture(scope="module")
def state():
    """The tiny model with its weights scaled up: random init gives near-uniform logits, whose
    argmax would turn on float rounding rather than on the model."""
    state = build_state(tiny_settings(), torch.device("cpu"))
    with torch.no_grad():
        for parameter in state.model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(20)
    return state


@torch.no_grad()
def plain_greedy(model, rotator, mode, prompt, count, stride=1):
    """argmax of the full-window forward, appended byte by byte: the definition generation must meet.
    The window holds the last seq_len bytes; when a byte overfills it, its first `stride` are dropped."""
    ids = list(prompt.encode("utf-8"))
    start = len(ids)
    seen = ids[-model.cfg.seq_len:]
    for _ in range(count):
        window = torch.tensor([seen])
        if mode is Mode.GEOMETRIC:
            rotated = rotator.rotate(model.embed_tokens(window).unsqueeze(0), rotator.angles()[:, None, None, :])
            logits = model.mean_logits(model.forward_presentations(rotated, presentation_experts(model)))
        else:
            logits = model(window).logits
        ids.append(int(logits[0, -1].argmax()))
        seen.append(ids[-1])
        if len(seen) > model.cfg.seq_len:
            del seen[:stride]
    return bytes(ids[start:]).decode("utf-8", errors="replace")


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_equals_the_plain_forward_loop_past_the_window(state, mode, use_cache):
    count = 60  # the prompt's 26 bytes + 60 > seq_len 32: the window slides
    greedy = SamplingSettings(temperature=0, max_bytes=count)
    sample = generate(state.model, state.rotator, PROMPT, greedy, mode, use_cache=use_cache, window_stride=None)
    assert sample.byte_count == count
    assert sample.text == plain_greedy(state.model, state.rotator, mode, PROMPT, count)
    again = generate(state.model, state.rotator, PROMPT, greedy, mode, use_cache=use_cache, window_stride=1)
    assert again.text == sample.text


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("stride", [16, 5])
def test_a_strided_window_equals_the_plain_loop_with_the_same_rule(state, mode, stride):
    count = 150  # several windows of 32 past the 26-byte prompt
    greedy = SamplingSettings(temperature=0, max_bytes=count)
    reference = plain_greedy(state.model, state.rotator, mode, PROMPT, count, stride)
    assert reference != plain_greedy(state.model, state.rotator, mode, PROMPT, count)  # the stride matters
    for use_cache in (True, False):
        sample = generate(state.model, state.rotator, PROMPT, greedy, mode, use_cache=use_cache, window_stride=stride)
        assert sample.text == reference


def test_the_default_stride_is_half_the_window_and_a_long_prompt_keeps_its_last_bytes(state):
    greedy = SamplingSettings(temperature=0, max_bytes=80)
    long_prompt = PROMPT * 3  # longer than the window
    half = plain_greedy(state.model, state.rotator, Mode.STANDARD, long_prompt, 80, stride=16)
    assert generate(state.model, state.rotator, long_prompt, greedy, Mode.STANDARD).text == half
    with pytest.raises(ValueError, match="stride"):
        generate(state.model, state.rotator, PROMPT, greedy, Mode.STANDARD, window_stride=33)


def count_full_passes(monkeypatch):
    """Counts the cached passes that start from no cache: each is a pass over a whole window."""
    counts = {"full": 0}
    for name in ("forward_cached", "forward_presentations_cached"):
        original = getattr(model_module.MoETransformer, name)

        def counting(self, *args, original=original, **kwargs):
            cache = kwargs.get("cache", args[-1] if len(args) > 1 else None)
            counts["full"] += cache is None
            return original(self, *args, **kwargs)
        monkeypatch.setattr(model_module.MoETransformer, name, counting)
    return counts


@pytest.mark.parametrize("mode", [Mode.STANDARD, Mode.GEOMETRIC])
def test_a_stride_makes_stride_times_fewer_full_passes_past_the_window(state, mode, monkeypatch):
    counts = count_full_passes(monkeypatch)
    # The 26-byte prompt fills the 32-byte window with the 6th byte written; 160 bytes follow past it.
    count, window = 7 + 16 * 10, 32
    greedy = SamplingSettings(temperature=0, max_bytes=count)
    generate(state.model, state.rotator, PROMPT, greedy, mode, window_stride=None)
    exact, counts["full"] = counts["full"], 0
    generate(state.model, state.rotator, PROMPT, greedy, mode, window_stride=16)
    strided = counts["full"]
    assert window == state.model.cfg.seq_len
    assert exact == 1 + 16 * 10  # the prompt's pass, then every byte past the window
    assert strided == 1 + 10  # the prompt's pass, then one per 16 bytes


def test_the_cache_changes_nothing_within_the_window(state):
    greedy = SamplingSettings(temperature=0, max_bytes=5)
    for mode in Mode:
        cached = generate(state.model, state.rotator, "Q: a", greedy, mode)
        assert cached.text == plain_greedy(state.model, state.rotator, mode, "Q: a", 5)


def test_top_k_one_is_greedy_and_a_seed_repeats_a_sample(state):
    model, rotator = state.model, state.rotator
    greedy = generate(model, rotator, PROMPT, SamplingSettings(temperature=0, max_bytes=20), Mode.STANDARD)
    top1 = generate(model, rotator, PROMPT, SamplingSettings(temperature=1.5, top_k=1, max_bytes=20), Mode.STANDARD,
                    generator=torch.Generator().manual_seed(3))
    assert top1.text == greedy.text
    warm = SamplingSettings(temperature=2.0, max_bytes=40)
    first, second = (generate(model, rotator, PROMPT, warm, Mode.GEOMETRIC, generator=torch.Generator().manual_seed(7))
                     for _ in range(2))
    other = generate(model, rotator, PROMPT, warm, Mode.GEOMETRIC, generator=torch.Generator().manual_seed(8))
    assert first.text == second.text and first.text != other.text


def test_stop_ends_the_sample_where_the_stop_string_is_written(state):
    model, rotator = state.model, state.rotator
    free = generate(model, rotator, PROMPT, SamplingSettings(temperature=0, max_bytes=40), Mode.STANDARD)
    # A byte the model writes anyway, so the test needs no trained model.
    at, stop = next((i, char) for i, char in enumerate(free.text) if i >= 3 and char.isascii())
    stopped = generate(model, rotator, PROMPT, SamplingSettings(temperature=0, max_bytes=40), Mode.STANDARD,
                       stop=stop)
    assert stopped.stopped and stopped.text.endswith(stop) and stop not in stopped.text[:-1]
    assert free.text.startswith(stopped.text) and len(stopped.text) <= at + 1
    assert not free.stopped


def test_experts_record_each_byte_in_each_layer(state):
    model, rotator, cfg = state.model, state.rotator, state.model.cfg
    sample = generate(model, rotator, PROMPT, SamplingSettings(temperature=0, max_bytes=12), Mode.STANDARD)
    assert sample.experts.shape == (cfg.n_layers, 12) and sample.experts.dtype.kind == "i"
    assert ((sample.experts >= 0) & (sample.experts < cfg.num_experts)).all()  # dormant ghosts are never chosen
    geometric = generate(model, rotator, PROMPT, SamplingSettings(temperature=0, max_bytes=12), Mode.GEOMETRIC)
    assert geometric.experts.shape == (cfg.n_layers, 12) and (geometric.experts == NOT_ROUTED).all()
    uncached = generate(model, rotator, PROMPT, SamplingSettings(temperature=0, max_bytes=12), Mode.STANDARD,
                        use_cache=False)
    np.testing.assert_array_equal(uncached.experts, sample.experts)


def test_the_model_is_left_as_it_was_found(state):
    state.model.train()
    generate(state.model, state.rotator, "a", SamplingSettings(max_bytes=2), Mode.STANDARD)
    assert state.model.training
    state.model.eval()
    generate(state.model, state.rotator, "a", SamplingSettings(max_bytes=2), Mode.STANDARD)
    assert not state.model.training
    state.model.train()
    with pytest.raises(ValueError, match="empty"):
        generate(state.model, state.rotator, "", SamplingSettings(), Mode.STANDARD)
