"""Whether a written answer is right: the same term as the reducer's normal form, up to the names of
bound variables, however the model chose to name them.

What counts as the expected answer, in order:
  - the record's answer is not a term (e.g. "no normal form (the reduction loops)"): that sentence,
    compared as stripped text. The parser reads a sentence as an application of multi-letter
    variables, so an answer counts as a term only when its every name is a letter followed by
    digits or primes (x, y1, z'), as in the embedded corpus and the user's lambda datasets;
  - the question is a term our normal-order reducer brings to a normal form: that normal form (a
    dataset's own answer may be wrong; the reducer's is checked);
  - otherwise the record's answer, parsed as a term.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from geogui.engine.data.lambda_calculus import Term, all_names, alpha_equivalent, normal_form, parse_term

ANSWER_PREFIX = "A: "
_TERM_NAME = re.compile(r"[^\W\d_][\d']*")


@dataclass(frozen=True)
class AnswerVerdict:
    right: bool
    how: str  # why, in a few words: for a samples table and for tests
    readable: bool = True  # an answer was written, and is a term where a term is expected


def _term_or_none(text: str | None) -> Term | None:
    if text is None or not text.strip():
        return None
    try:
        term = parse_term(text.strip())
    except (ValueError, RecursionError):  # a model's answer can be any bytes at all
        return None
    return term if all(_TERM_NAME.fullmatch(name) for name in all_names(term)) else None


@functools.lru_cache(maxsize=4096)  # the same held-out questions are checked at every evaluation
def expected_term(question: str, expected: str | None) -> Term | None:
    """The normal form of the question, else the record's answer as a term; None if neither exists."""
    term = _term_or_none(question)
    try:
        reduced = normal_form(term) if term is not None else None
    except RecursionError:  # a term that grows too deep for the recursive reducer has none we can check
        reduced = None
    return reduced if reduced is not None else _term_or_none(expected)


def check_answer(question: str, expected: str | None, produced: str | None) -> AnswerVerdict:
    if expected is not None and expected.strip() and _term_or_none(expected) is None:
        if produced is not None and produced.strip() == expected.strip():
            return AnswerVerdict(True, "same text as the record's answer")
        return AnswerVerdict(False, "not the record's answer", readable=bool(produced and produced.strip()))
    target = expected_term(question, expected)
    if target is None:
        return AnswerVerdict(False, "no expected answer: the question has no normal form and the record no answer")
    if produced is None or not produced.strip():
        return AnswerVerdict(False, "no answer written", readable=False)
    written = _term_or_none(produced)
    if written is None:
        return AnswerVerdict(False, "the answer does not parse as a term", readable=False)
    if alpha_equivalent(written, target):
        return AnswerVerdict(True, "alpha-equivalent to the normal form")
    return AnswerVerdict(False, "a different term")


def extract_answer(generated_text: str) -> str | None:
    """The text after the last line that starts with "A: ", up to that line's end; None if there is none."""
    lines = generated_text.split("\n")
    for line in reversed(lines):
        if line.startswith(ANSWER_PREFIX):
            return line[len(ANSWER_PREFIX):].strip() or None
    return None
