"""A sample asked for while a run trains or is paused, and how any loaded model answers one.

The request is plain data: it crosses from the app's GUI thread to the thread that holds the model
(the trainer's, or a background thread that loaded a checkpoint). torch is imported only when a
sample is taken, so that the GUI thread may build requests before any run has started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterator

from geogui.engine.samples import SampleRecord
from geogui.settings import Mode, SamplingSettings

if TYPE_CHECKING:
    from geogui.engine.state import TrainingState

_QUESTION_PROMPT = re.compile(r"Q: (?P<question>[^\n]*)\nReasoning:\n", re.S)


@dataclass(frozen=True)
class SampleRequest:
    """Continue `prompt` (empty: the first held-out question of the run's data) with `sampling`."""

    prompt: str
    sampling: SamplingSettings
    expected: str | None = None  # a held-out record's own answer, when the prompt is its question
    seed: int | None = None  # None: a fresh draw each time


def prompt_question(prompt: str) -> str | None:
    """The question of a prompt in the training format ("Q: …\\nReasoning:\\n…"); None for other text."""
    match = _QUESTION_PROMPT.match(prompt)
    return match["question"].strip() or None if match else None


def answer_right(prompt: str, expected: str | None, text: str) -> bool | None:
    """Whether the continuation answers the prompt's question right; None when there is nothing to check
    (not a question, or one with neither a normal form nor a recorded answer)."""
    from geogui.engine.data.answer_check import check_answer, expected_term, extract_answer

    question = prompt_question(prompt)
    if question is None or expected_term(question, expected) is None:
        return None
    return check_answer(question, expected, extract_answer(prompt + text)).right


def first_heldout_prompt(validation_text: str) -> tuple[str, str | None] | None:
    """The first held-out question's prompt and answer; None when the data has no records."""
    from geogui.engine.data.heldout import heldout_questions

    questions = heldout_questions(validation_text, 1)
    return (questions[0].prompt, questions[0].answer) if questions else None


def take_sample(state: "TrainingState", request: SampleRequest, mode: Mode | None = None) -> SampleRecord:
    """Generate the request's sample from `state`'s model in `mode` (default: the state's own), up to a
    record's closing blank line. The prompt must not be empty here: the caller resolves the default."""
    import torch

    from geogui.engine.answer_accuracy import RECORD_END
    from geogui.engine.generation import generate

    mode = mode or state.mode
    generator = torch.Generator()
    if request.seed is None:
        generator.seed()
    else:
        generator.manual_seed(request.seed)
    sample = generate(state.model, state.rotator, request.prompt, request.sampling, mode, generator=generator,
                      stop=RECORD_END)
    return SampleRecord(
        step=state.step, mode=mode.value, prompt=request.prompt, text=sample.text,
        temperature=request.sampling.temperature, top_k=request.sampling.top_k, seconds=sample.seconds,
        right=answer_right(request.prompt, request.expected, sample.text), expected=request.expected,
        experts=tuple(tuple(int(e) for e in layer) for layer in sample.experts),
    )


class SampleServer:
    """The trainer's queue of sample requests. `add` and `pending` are called under the trainer's lock;
    `serve` runs in the trainer's thread between batches and takes the lock only to empty the queue."""

    def __init__(self) -> None:
        self._requests: list[SampleRequest] = []
        self.corpus = None  # the run's Corpus, for the default prompt
        self._default: tuple[str, str | None] | None = None

    @property
    def pending(self) -> bool:
        return bool(self._requests)

    def add(self, request: SampleRequest) -> None:
        self._requests.append(request)

    def serve(self, state: "TrainingState | None", lock) -> Iterator[SampleRecord]:
        with lock:
            requests, self._requests = self._requests, []
        if state is None:
            return
        for request in requests:
            yield take_sample(state, self._resolved(request))

    def _resolved(self, request: SampleRequest) -> SampleRequest:
        if request.prompt:
            return request
        if self._default is None:
            from geogui.engine.data import decode

            text = decode(self.corpus.val) if self.corpus is not None else ""
            self._default = first_heldout_prompt(text) or (default_line(text), None)
        prompt, expected = self._default
        return replace(request, prompt=prompt, expected=expected)


def default_line(validation_text: str, limit: int = 64) -> str:
    """A prompt for data without question records: the first line of its held-out text."""
    return validation_text.lstrip("\n").split("\n", 1)[0][:limit] or "\n"
