"""Records as text: the one question / reasoning / answer format shared by the embedded corpus and
the user's JSON / JSONL files, and the reasoning written for a reduction."""

from __future__ import annotations

from geogui.engine.data.lambda_calculus import App, Redex, Reduction, Term, Var, free_vars, show_term

RECORD_FIELDS = ("question", "reasoning", "answer")
STEP_SEPARATOR = "\n####\n"


def format_record(question: str, reasoning: str, answer: str) -> str:
    """The one text format shared by the embedded corpus and the user's JSON / JSONL records."""
    return f"Q: {question.strip()}\nReasoning:\n{reasoning.strip()}\nA: {answer.strip()}\n\n"


def describe_step(redex: Redex, after: Term) -> str:
    """A reasoning line in the dataset's shape: `title - explanation - resulting term`."""
    lam, arg = redex.lam, show_term(redex.arg)
    where = "outer" if redex.outermost else "inner"
    redex_text = show_term(App(redex.lam, redex.arg))
    result = show_term(redex.contractum)
    note = "".join(
        f"Rename the bound {old} to {new} first: {old} is free in {arg}, so substituting under "
        f"λ{old} would capture it. "
        for old, new in redex.renames
    )
    if lam.body == Var(lam.var):
        title = f"Apply {where} identity function: apply {show_term(lam)} to {arg}"
        explanation = f"The identity function returns its argument, so {redex_text} yields {arg}."
    elif lam.var not in free_vars(lam.body):
        title = f"Apply {where} function: replace {lam.var} with {arg} in {show_term(lam.body)}"
        explanation = (
            f"{lam.var} is not free in {show_term(lam.body)}, so the argument is discarded "
            f"and {redex_text} yields {result}."
        )
    else:
        title = f"Apply {where} function: replace {lam.var} with {arg} in {show_term(lam.body)}"
        explanation = f"{note}Substitute {arg} for {lam.var} in {show_term(lam.body)} to get {result}."
    return f"{title} - {explanation} - {show_term(after)}"


def reduction_record(term: Term, reduction: Reduction) -> tuple[str, str, str]:
    """(question, reasoning, answer) for a reduced term, including the non-terminating cases."""
    lines = [describe_step(redex, after) for redex, after in reduction.steps]
    last = show_term(reduction.result)
    if reduction.outcome == "normal":
        answer = last
    elif reduction.outcome == "loop":
        lines.append(
            f"Stop: the term reduced to itself - Reducing {last} gives back the same term, "
            f"so normal-order reduction never terminates. - {last}"
        )
        answer = "no normal form (the reduction loops)"
    else:
        why = "keeps growing" if reduction.outcome == "grows" else "has not reached a normal form"
        lines.append(
            f"Stop: step limit reached - After {len(reduction.steps)} steps the term {why}, "
            f"so it has no normal form or needs far more steps. - {last}"
        )
        answer = f"no normal form within {len(reduction.steps)} steps"
    return show_term(term), STEP_SEPARATOR.join(lines), answer
