"""Generation: greedy equals a plain full-window forward loop in every mode, with or without the
cache and past seq_len; sampling is reproducible; stop and the experts record."""

import numpy as np
import pytest
import torch

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
def plain_greedy(model, rotator, mode, prompt, count):
    """argmax of the full-window forward, appended byte by byte: the definition generation must meet."""
    ids = list(prompt.encode("utf-8"))
    start = len(ids)
    for _ in range(count):
        window = torch.tensor([ids[-model.cfg.seq_len:]])
        if mode is Mode.GEOMETRIC:
            rotated = rotator.rotate(model.embed_tokens(window).unsqueeze(0), rotator.angles()[:, None, None, :])
            logits = model.mean_logits(model.forward_presentations(rotated, presentation_experts(model)))
        else:
            logits = model(window).logits
        ids.append(int(logits[0, -1].argmax()))
    return bytes(ids[start:]).decode("utf-8", errors="replace")


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_equals_the_plain_forward_loop_past_the_window(state, mode, use_cache):
    count = 60  # the prompt's 26 bytes + 60 > seq_len 32: the window slides
    greedy = SamplingSettings(temperature=0, max_bytes=count)
    sample = generate(state.model, state.rotator, PROMPT, greedy, mode, use_cache=use_cache)
    assert sample.byte_count == count
    assert sample.text == plain_greedy(state.model, state.rotator, mode, PROMPT, count)
    again = generate(state.model, state.rotator, PROMPT, greedy, mode, use_cache=use_cache)
    assert again.text == sample.text


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
