"""Answer accuracy: the batched greedy answers are generate()'s, one by one, with the same window
stride, past the window too; no questions, no metric."""

import pytest
import torch

from geogui.engine.answer_accuracy import AccuracyResult, answer_accuracy, greedy_continuations
from geogui.engine.data import decode, load_corpus
from geogui.engine.data.heldout import HeldOutQuestion, heldout_questions
from geogui.engine.generation import generate
from geogui.engine.state import build_state
from geogui.settings import Mode, SamplingSettings
from tests.conftest import tiny_settings


@pytest.fixture(scope="module")
def state():
    state = build_state(tiny_settings(), torch.device("cpu"))
    with torch.no_grad():  # decisive logits (see test_generation)
        for parameter in state.model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(20)
    return state


@pytest.fixture(scope="module")
def questions():
    return heldout_questions(decode(load_corpus(tiny_settings().data, 32).val), 4)


@pytest.mark.parametrize("mode", list(Mode))
def test_batched_answers_equal_one_by_one_generation(state, questions, mode):
    batched = greedy_continuations(state.model, state.rotator, [q.prompt for q in questions], mode, 40, stop="\n")
    greedy = SamplingSettings(temperature=0, max_bytes=40)
    single = [generate(state.model, state.rotator, q.prompt, greedy, mode, stop="\n").text for q in questions]
    assert batched == single


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("stride", [None, 5, 16])
def test_batched_answers_equal_one_by_one_past_the_window_with_a_stride(state, questions, mode, stride):
    prompts = [q.prompt for q in questions] + ["Q", "Q: ((λx.x) a)"]  # lengths differ, one of a single byte
    count = 90  # no stop: every answer runs several 32-byte windows past its prompt
    batched = greedy_continuations(state.model, state.rotator, prompts, mode, count, stop="", window_stride=stride)
    greedy = SamplingSettings(temperature=0, max_bytes=count)
    single = [generate(state.model, state.rotator, prompt, greedy, mode, window_stride=stride).text
              for prompt in prompts]
    assert batched == single


def test_questions_leave_the_batch_at_different_bytes(state, questions):
    stops = greedy_continuations(state.model, state.rotator, [q.prompt for q in questions], Mode.STANDARD, 90,
                                 stop="\n", window_stride=16)
    greedy = SamplingSettings(temperature=0, max_bytes=90)
    assert stops == [generate(state.model, state.rotator, q.prompt, greedy, Mode.STANDARD, stop="\n",
                              window_stride=16).text for q in questions]


def test_a_model_that_writes_the_answer_is_scored_right(state, questions, monkeypatch):
    import geogui.engine.answer_accuracy as accuracy

    written = [f"A: {q.answer}\n\n" if i % 2 == 0 else "A: (λ\n\n" for i, q in enumerate(questions)]
    monkeypatch.setattr(accuracy, "greedy_continuations", lambda *args, **kwargs: written)
    result = answer_accuracy(state.model, state.rotator, questions, Mode.STANDARD, 40)
    assert (result.right, result.asked, result.unparsed) == (2, 4, 2) and result.fraction == 0.5


def test_no_questions_give_no_metric(state):
    result = answer_accuracy(state.model, state.rotator, [], Mode.STANDARD, 40)
    assert result == AccuracyResult(0, 0, 0, 0.0) and result.fraction is None


def test_an_untrained_model_is_scored_without_failing(state):
    question = HeldOutQuestion("Q: ((λx.x) a)\nReasoning:\n", "((λx.x) a)", "a")
    result = answer_accuracy(state.model, state.rotator, [question], Mode.GEOMETRIC, 8)
    assert result.asked == 1 and result.right == 0 and result.unparsed == 1
