"""Held-out questions come from the validation tail only; the checker judges terms up to renamed binders."""

import pytest

from geogui.engine.data import decode, default_corpus_text, format_record, load_corpus
from geogui.engine.data.answer_check import check_answer, extract_answer
from geogui.engine.data.heldout import heldout_questions
from geogui.settings import DataSettings


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(DataSettings(), 128)


def test_heldout_questions_are_the_complete_records_of_the_validation_tail(corpus):
    validation = decode(corpus.val)
    questions = heldout_questions(validation, 20)
    assert len(questions) == 20 and questions == heldout_questions(validation, 20)
    training = decode(corpus.train)
    for question in questions:
        assert question.prompt == f"Q: {question.question}\nReasoning:\n"
        record_start = validation.index(question.prompt)
        assert record_start == 0 or validation[record_start - 2:record_start] == "\n\n"
        assert question.answer
    # The tail opens inside a record: its question lies in the training text and is not offered.
    assert not validation.startswith("Q: ")
    cut_question = training[training.rindex("Q: "):].split("\n", 1)[0][3:]
    assert cut_question not in {q.question for q in questions}


def test_a_record_cut_by_either_end_is_skipped():
    first = format_record("((λx.x) a)", "step", "a")
    second = format_record("((λy.y) b)", "step", "b")
    text = first[5:] + second + first[:-4]
    assert [(q.question, q.answer) for q in heldout_questions(text, 10)] == [("((λy.y) b)", "b")]
    assert heldout_questions("plain text with no records\n\nat all", 10) == []
    assert len(heldout_questions(first + second, 1)) == 1


@pytest.mark.parametrize("produced, right", [
    ("(λz.z)", True), ("(λw.w)", True), ("λq.q", True),
    ("(λz.a)", False), ("a", False), ("((λz.z) a)", False),
])
def test_renamed_binders_are_right_and_other_terms_wrong(produced, right):
    assert check_answer("((λx.(λy.y)) a)", "(λy.y)", produced).right is right


def test_the_reducer_judges_even_when_the_record_is_wrong():
    # (λx.λy.x y) (λz.z z) is λy.(y y); a record that says (y y) does not make (y y) right.
    assert check_answer("((λx.(λy.(x y))) (λz.(z z)))", "(y y)", "(λq.(q q))").right
    assert not check_answer("((λx.(λy.(x y))) (λz.(z z)))", "(y y)", "(y y)").right


def test_an_answer_that_is_not_a_term_is_matched_as_text():
    question, expected = "((λx.(x x)) (λx.(x x)))", "no normal form (the reduction loops)"
    assert check_answer(question, expected, " no normal form (the reduction loops) ").right
    verdict = check_answer(question, expected, "no normal form within 5 steps")
    assert not verdict.right and verdict.readable
    unreadable = check_answer("((λx.x) a)", "a", "((λx.")
    assert not unreadable.right and not unreadable.readable
    assert not check_answer("((λx.x) a)", "a", None).readable


def test_the_corpus_answers_are_right_and_perturbed_ones_wrong():
    records = default_corpus_text().split("\n\n")[:300]
    questions = heldout_questions("\n\n".join(records) + "\n\n", 300)
    assert len(questions) > 250
    checked = 0
    for question in questions:
        assert check_answer(question.question, question.answer, question.answer).right, question
        if question.answer.startswith("(λ"):  # a lambda: wrap it in an application, a different term
            assert not check_answer(question.question, question.answer, f"({question.answer} a)").right
            checked += 1
    assert checked > 50


def test_extract_answer_takes_the_last_answer_line():
    assert extract_answer("step\nA: (λx.x)\n\n") == "(λx.x)"
    assert extract_answer("A: a\nQ: b\nReasoning:\nA: (b c)  \nmore") == "(b c)"
    assert extract_answer("no answer here, not even A: a mid-line one") is None
    assert extract_answer("A: \n") is None
