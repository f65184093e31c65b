"""The embedded default corpus, generated deterministically by the lambda-calculus reducer in the same
question / reasoning / answer format as the user's own dataset, so the app has something meaningful
to learn without any file."""

from __future__ import annotations

import functools
import random
from typing import Iterator

from geogui.engine.data.lambda_calculus import (
    App,
    Lam,
    Term,
    Var,
    all_names,
    church,
    parse_term,
    reduce_term,
    show_term,
)
from geogui.engine.data.records import format_record, reduction_record

DEFAULT_CORPUS_SOURCE = "embedded lambda-calculus corpus"

_CORPUS_SEED = 20_240_611
_CORPUS_TARGET_BYTES = 900_000
_MAX_RECORD_CHARS = 1_500
_BOUND = ("x", "y", "z", "w", "u", "v", "s", "t", "p", "q", "f", "g", "h", "k", "m", "n")
_FREE = ("a", "b", "c", "d")

_I = parse_term("λx.x")
_K = parse_term("λx.λy.x")
_S = parse_term("λx.λy.λz.x z (y z)")
_B = parse_term("λf.λg.λx.f (g x)")
_C = parse_term("λf.λx.λy.f y x")
_W = parse_term("λf.λx.f x x")
_M = parse_term("λx.x x")
_KI = parse_term("λx.λy.y")
_COMBINATORS = (_I, _K, _S, _B, _C, _W, _M, _KI)

_TRUE = parse_term("λt.λf.t")
_FALSE = parse_term("λt.λf.f")
_AND = parse_term("λp.λq.p q p")
_OR = parse_term("λp.λq.p p q")
_NOT = parse_term("λp.λu.λv.p v u")
_IF = parse_term("λp.λt.λe.p t e")

_SUCC = parse_term("λn.λf.λx.f (n f x)")
_PLUS = parse_term("λm.λn.λf.λx.m f (n f x)")
_MULT = parse_term("λm.λn.λf.m (n f)")
_ISZERO = parse_term("λn.n (λx.λt.λf.f) (λt.λf.t)")


def _apply(head: Term, *args: Term) -> Term:
    for arg in args:
        head = App(head, arg)
    return head


def _rename_binders(term: Term, rng: random.Random) -> Term:
    """Give the binders fresh random letters, so the corpus is not always λx.x.

    New names avoid every name already in the term and each other, so no renaming can capture.
    """
    available = [name for name in _BOUND if name not in all_names(term)]

    def go(t: Term, mapping: dict[str, str]) -> Term:
        if isinstance(t, Var):
            return Var(mapping.get(t.name, t.name))
        if isinstance(t, App):
            return App(go(t.fn, mapping), go(t.arg, mapping))
        new = available.pop(rng.randrange(len(available))) if available else t.var
        return Lam(new, go(t.body, {**mapping, t.var: new}))

    return go(term, {})


def _random_term(rng: random.Random, bound: list[str], depth: int) -> Term:
    if depth <= 0 or rng.random() < 0.25:
        if bound and rng.random() < 0.75:
            return Var(rng.choice(bound))
        return Var(rng.choice(_FREE))
    if rng.random() < 0.35:
        name = rng.choice(_BOUND)
        return Lam(name, _random_term(rng, bound + [name], depth - 1))
    return App(_random_term(rng, bound, depth - 1), _random_term(rng, bound, depth - 1))


def _random_function(rng: random.Random, arity: int) -> Lam:
    names = [rng.choice(_BOUND) for _ in range(arity)]
    body = _random_term(rng, list(names), rng.randint(1, 3))
    for name in reversed(names):
        body = Lam(name, body)
    assert isinstance(body, Lam)
    return body


def _random_argument(rng: random.Random) -> Term:
    roll = rng.random()
    if roll < 0.4:
        return Var(rng.choice(_FREE))
    if roll < 0.7:
        return _rename_binders(rng.choice(_COMBINATORS), rng)
    return _random_function(rng, 1) if roll < 0.9 else _random_term(rng, [], 2)


def _example_random(rng: random.Random) -> Term:
    arity = rng.randint(1, 3)
    args = [_random_argument(rng) for _ in range(rng.randint(1, arity))]
    return _apply(_random_function(rng, arity), *args)


def _example_capture(rng: random.Random) -> Term:
    """((λx.(λy.BODY)) ARG) with y free in ARG: substitution must rename y to stay correct."""
    x = rng.choice(_BOUND[:8])
    y = rng.choice([name for name in _BOUND[:8] if name != x])
    body = App(Var(x), Var(y)) if rng.random() < 0.5 else App(Var(y), Var(x))
    if rng.random() < 0.5:
        body = App(body, _random_term(rng, [x, y], 1))
    arg: Term = Var(y) if rng.random() < 0.5 else App(Var(y), Var(rng.choice(_FREE)))
    term = App(Lam(x, Lam(y, body)), arg)
    return App(term, Var(rng.choice(_FREE))) if rng.random() < 0.4 else term


def _example_combinator(rng: random.Random) -> Term:
    head = _rename_binders(rng.choice(_COMBINATORS), rng)
    args = [_random_argument(rng) for _ in range(rng.randint(1, 3))]
    return _apply(head, *args)


def _example_church(rng: random.Random) -> Term:
    kind = rng.randrange(5)
    if kind == 0:
        term = _apply(_SUCC, church(rng.randint(0, 3)))
    elif kind == 1:
        term = _apply(_PLUS, church(rng.randint(0, 3)), church(rng.randint(0, 3)))
    elif kind == 2:
        term = _apply(_MULT, church(rng.randint(0, 2)), church(rng.randint(0, 3)))
    elif kind == 3:
        term = _apply(_ISZERO, church(rng.randint(0, 2)))
    else:
        term = _apply(church(rng.randint(0, 4)), Var(rng.choice(("g", "h"))), Var(rng.choice(_FREE)))
    # Only a few dozen distinct arithmetic terms exist; renamed binders make many more examples.
    return _rename_binders(term, rng) if rng.random() < 0.6 else term


def _random_boolean(rng: random.Random, depth: int) -> Term:
    if depth <= 0 or rng.random() < 0.4:
        return rng.choice((_TRUE, _FALSE))
    op = rng.randrange(3)
    if op == 0:
        return _apply(_NOT, _random_boolean(rng, depth - 1))
    return _apply(_AND if op == 1 else _OR, _random_boolean(rng, depth - 1), _random_boolean(rng, depth - 1))


def _example_boolean(rng: random.Random) -> Term:
    condition = _random_boolean(rng, rng.randint(1, 2))
    if rng.random() < 0.4:
        a = rng.choice(_FREE)
        b = rng.choice([name for name in _FREE if name != a])
        condition = _apply(_IF, condition, Var(a), Var(b))
    return _rename_binders(condition, rng) if rng.random() < 0.5 else condition


def _example_divergent(rng: random.Random) -> Term:
    """Ω-like and Y-like terms, and lazy ones where normal order discards a divergent argument."""
    omega = _apply(_rename_binders(_M, rng), _rename_binders(_M, rng))
    kind = rng.randrange(4)
    if kind == 0:
        return omega
    if kind == 1:
        triple = parse_term("λx.x x x")
        return App(_rename_binders(triple, rng), _rename_binders(triple, rng))
    if kind == 2:
        y = _rename_binders(parse_term("λf.(λx.f (x x)) (λx.f (x x))"), rng)
        return App(y, Var(rng.choice(_FREE)))
    name = rng.choice(_BOUND)
    keep = Var(rng.choice(_FREE)) if rng.random() < 0.5 else _rename_binders(rng.choice(_COMBINATORS), rng)
    return App(Lam(name, keep), omega)


# (weight, generator, step limit): divergent terms get a short limit, since each step only grows them.
_GENERATORS = (
    (0.36, _example_random, 24),
    (0.14, _example_capture, 24),
    (0.20, _example_combinator, 24),
    (0.12, _example_church, 24),
    (0.12, _example_boolean, 24),
    (0.06, _example_divergent, 5),
)


def _corpus_examples(seed: int, target_bytes: int) -> Iterator[str]:
    rng = random.Random(seed)
    seen: set[str] = set()
    total = 0
    while total < target_bytes:
        roll = rng.random()
        for weight, generate, max_steps in _GENERATORS:
            roll -= weight
            if roll < 0:
                break
        term = generate(rng)
        question = show_term(term)
        if question in seen:
            continue
        seen.add(question)
        reduction = reduce_term(term, max_steps=max_steps, max_size=120)
        if not reduction.steps:
            continue  # already in normal form: nothing to reason about
        text = format_record(*reduction_record(term, reduction))
        if len(text) > _MAX_RECORD_CHARS:
            continue  # a few blown-up terms would otherwise dominate the corpus
        total += len(text.encode("utf-8"))
        yield text


def generate_corpus_text(seed: int = _CORPUS_SEED, target_bytes: int = _CORPUS_TARGET_BYTES) -> str:
    """Deterministic: only `random.Random(seed)` integer draws, stable across machines and Pythons."""
    return "".join(_corpus_examples(seed, target_bytes))


@functools.lru_cache(maxsize=1)
def default_corpus_text() -> str:
    """The embedded corpus, generated once per process (well under a second)."""
    return generate_corpus_text()
