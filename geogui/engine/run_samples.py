"""What the model writes while it trains: a sample of one fixed held-out prompt every
`sampling.sample_interval` steps, and the answer accuracy on the first held-out questions at each
evaluation (`RunSamples`). The trainer calls it between steps, outside every step's timing: each
sample and accuracy ends with a host read of what was written, so nothing stays queued on the
device for the next batch's clock.

The prompt is `sampling.prompt`, else the first held-out question (its answer is then checked),
else, for plain text without question/answer records, the start of the held-out text. A sample is
drawn with a generator seeded afresh each time, so that samples of different steps differ only
because the model did.

Under data parallelism only rank 0 writes; the other ranks receive its record (`Replicas.share`),
which also keeps every rank at the same point. Rank 0's passes must not wait for the others, so the
router's sum of expert counts over ranks is switched off while it writes.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from geogui.engine.answer_accuracy import RECORD_END, answer_accuracy
from geogui.engine.data import Corpus, decode
from geogui.engine.data.answer_check import check_answer, extract_answer
from geogui.engine.data.heldout import HeldOutQuestion, heldout_questions
from geogui.engine.distributed.replicas import Replicas
from geogui.engine.generation import generate
from geogui.engine.model import MoETransformer
from geogui.engine.samples import AccuracyRecord, SampleRecord
from geogui.engine.state import TrainingState
from geogui.settings import SamplingSettings

PLAIN_PROMPT_BYTES = 64  # of the held-out text, the prompt for data without records (at most seq_len)
SAMPLE_SEED_OFFSET = 2  # the sample generator's seed is the run's plus this (evaluation uses + 1)


@contextlib.contextmanager
def _alone(model: MoETransformer) -> Iterator[None]:
    """The model's routed passes without the collective over ranks (one rank writes alone)."""
    reductions = [layer.over_ranks for layer in model.moe_layers]
    for layer in model.moe_layers:
        layer.over_ranks = None
    try:
        yield
    finally:
        for layer, reduction in zip(model.moe_layers, reductions):
            layer.over_ranks = reduction


class RunSamples:
    """A run's samples and accuracies; the held-out questions are found once, at the start."""

    def __init__(self, sampling: SamplingSettings, corpus: Corpus, seq_len: int, seed: int,
                 replicas: Replicas) -> None:
        self.sampling, self.seed, self.replicas = sampling, seed, replicas
        # Found even with samples and accuracy off: the Samples tab offers the first as its prompt.
        questions = heldout_questions(decode(corpus.val), max(1, sampling.accuracy_questions))
        self.questions = questions[:sampling.accuracy_questions]
        self.question: HeldOutQuestion | None = None  # the sample's prompt, when it is a question
        self._next_accuracy = sampling.accuracy_interval
        self._checked_at: int | None = None  # the step of the last accuracy check
        if sampling.prompt:
            self.prompt = sampling.prompt
            self.question = next((q for q in questions if q.prompt == sampling.prompt), None)
        elif questions:
            self.question = questions[0]
            self.prompt = self.question.prompt
        else:
            self.prompt = decode(corpus.val[:min(PLAIN_PROMPT_BYTES, seq_len)])

    def after_step(self, state: TrainingState, step: int) -> Iterator[SampleRecord]:
        interval = self.sampling.sample_interval
        if interval and step % interval == 0 and self.prompt:
            yield self.replicas.share(self._sample(state, step) if self.replicas.rank == 0 else None)

    def after_evaluation(self, state: TrainingState, step: int, last: bool = False) -> Iterator[AccuracyRecord]:
        """Accuracy at the first evaluation at or past each `accuracy_interval` steps, and at the last."""
        interval = self.sampling.accuracy_interval
        due = not interval or step >= self._next_accuracy or last
        if self.questions and due and step != self._checked_at:
            self._checked_at = step
            self._next_accuracy = (step // interval + 1) * interval if interval else 0
            yield self.replicas.share(self._accuracy(state, step) if self.replicas.rank == 0 else None)

    def _sample(self, state: TrainingState, step: int) -> SampleRecord:
        sampling = self.sampling
        generator = torch.Generator().manual_seed(self.seed + SAMPLE_SEED_OFFSET)
        question = self.question
        with _alone(state.model):
            written = generate(state.model, state.rotator, self.prompt, sampling, state.mode, generator=generator,
                               stop=RECORD_END if question is not None else None)
        right = None
        if question is not None:
            right = check_answer(question.question, question.answer, extract_answer(written.text)).right
        return SampleRecord(step=step, mode=state.mode.value, prompt=self.prompt, text=written.text,
                            temperature=sampling.temperature, top_k=sampling.top_k, seconds=written.seconds,
                            right=right, expected=question.answer if question is not None else None,
                            experts=tuple(tuple(layer) for layer in written.experts.tolist()))

    def _accuracy(self, state: TrainingState, step: int) -> AccuracyRecord:
        with _alone(state.model):
            result = answer_accuracy(state.model, state.rotator, self.questions, state.mode,
                                     self.sampling.answer_bytes)
        return AccuracyRecord(step=step, mode=state.mode.value, right=result.right, asked=result.asked,
                              unparsed=result.unparsed, seconds=result.seconds)
