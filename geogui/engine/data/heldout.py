"""Questions the model never trained on: the complete records of the held-out tail, in the training
format, for measuring whether the model answers them.

The held-out tail (`batches.split_sizes`) is cut at a byte offset, so its first record is usually
the end of one the model trained on: only records that start inside the tail count. A record
starts with "Q: " at the beginning of the tail or right after a record's closing blank line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# format_record's shape: "Q: question\nReasoning:\nreasoning\nA: answer\n\n".
_RECORD = re.compile(r"Q: (?P<question>[^\n]*)\nReasoning:\n(?P<reasoning>.*?)\nA: (?P<answer>[^\n]*)\n\n", re.S)
_RECORD_START = re.compile(r"(?:^|(?<=\n\n))Q: ")
PROMPT_END = "\nReasoning:\n"


@dataclass(frozen=True)
class HeldOutQuestion:
    prompt: str  # "Q: …\nReasoning:\n": what the model continues, in the training format
    question: str
    answer: str | None  # the record's answer; None when the record gives none


def heldout_questions(validation_text: str, n: int) -> list[HeldOutQuestion]:
    """The first n complete records of the held-out text (all of them if fewer), in order."""
    questions: list[HeldOutQuestion] = []
    for start in _RECORD_START.finditer(validation_text):
        if len(questions) >= n:
            break
        record = _RECORD.match(validation_text, start.start())
        if record is None:  # cut by the end of the text, or not a record at all
            continue
        question = record["question"].strip()
        if not question:
            continue
        answer = record["answer"].strip() or None
        questions.append(HeldOutQuestion(f"Q: {question}{PROMPT_END}", question, answer))
    return questions
