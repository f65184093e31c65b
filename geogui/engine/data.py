"""Training data: a byte-level tokenizer, the embedded lambda-calculus corpus, user files and batches.

Bytes are the tokens (UTF-8, vocabulary of 256), so there is nothing to download or train, and any
text the user brings is representable. The default corpus is generated here, deterministically,
by a real normal-order lambda-calculus reducer, in the same question / reasoning / answer format as
the user's own dataset, so the app has something meaningful to learn without any file.

User files are read strictly: every problem becomes a one-line `DataError` naming the file, because
the GUI shows that line to the user and a traceback would tell them nothing.
"""

from __future__ import annotations

import functools
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Union

import torch

from geogui.settings import DataSettings

VOCAB_SIZE = 256
DEFAULT_CORPUS_SOURCE = "embedded lambda-calculus corpus"
RECORD_FIELDS = ("question", "reasoning", "answer")
STEP_SEPARATOR = "\n####\n"


# --------------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------------


def encode(text: str) -> torch.Tensor:
    """UTF-8 bytes as a 1-D uint8 tensor (one token per byte)."""
    raw = text.encode("utf-8")
    if not raw:
        return torch.empty(0, dtype=torch.uint8)
    # frombuffer avoids a Python list of a million ints; the bytearray gives it a writable buffer.
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8)


def decode(ids: torch.Tensor | Iterable[int]) -> str:
    """Inverse of `encode`. Model samples can cut a multi-byte character in half, hence errors="replace"."""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().reshape(-1).tolist()
    return bytes(ids).decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------------
# A tiny untyped lambda calculus (for the embedded corpus)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Var:
    name: str


@dataclass(frozen=True, slots=True)
class Lam:
    var: str
    body: "Term"


@dataclass(frozen=True, slots=True)
class App:
    fn: "Term"
    arg: "Term"


Term = Union[Var, Lam, App]


def show_term(term: Term) -> str:
    """Fully parenthesised, as in the user's dataset: `(λx.(x y))`; a bare variable needs no parentheses."""
    parts: list[str] = []

    def walk(t: Term) -> None:
        if isinstance(t, Var):
            parts.append(t.name)
        elif isinstance(t, Lam):
            parts.append(f"(λ{t.var}.")
            walk(t.body)
            parts.append(")")
        else:
            parts.append("(")
            walk(t.fn)
            parts.append(" ")
            walk(t.arg)
            parts.append(")")

    walk(term)
    return "".join(parts)


def parse_term(source: str) -> Term:
    """Parse `λx.body` (or `\\x.body`), left-associative application and parentheses.

    A lambda body extends as far right as possible, the usual convention, so both the fully
    parenthesised form written by `show_term` and the lighter hand-written form parse.
    """
    tokens = _tokenize(source)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal position
        token = peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"cannot parse lambda term {source!r}: expected {expected or 'more input'}")
        position += 1
        return token

    def expression() -> Term:
        if peek() == "λ":
            take("λ")
            name = take()
            if not _is_name(name):
                raise ValueError(f"cannot parse lambda term {source!r}: bad variable {name!r}")
            take(".")
            return Lam(name, expression())
        term = atom()
        while peek() not in (None, ")"):
            term = App(term, expression() if peek() == "λ" else atom())
        return term

    def atom() -> Term:
        token = take()
        if token == "(":
            inner = expression()
            take(")")
            return inner
        if not _is_name(token):
            raise ValueError(f"cannot parse lambda term {source!r}: unexpected {token!r}")
        return Var(token)

    term = expression()
    if peek() is not None:
        raise ValueError(f"cannot parse lambda term {source!r}: unexpected {peek()!r}")
    return term


def _tokenize(source: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char.isspace():
            i += 1
        elif char in "λ\\":
            tokens.append("λ")
            i += 1
        elif char in "().":
            tokens.append(char)
            i += 1
        else:
            start = i
            while i < len(source) and (source[i].isalnum() or source[i] in "_'"):
                i += 1
            if i == start:
                raise ValueError(f"cannot parse lambda term {source!r}: unexpected {char!r}")
            tokens.append(source[start:i])
    return tokens


def _is_name(token: str) -> bool:
    return token not in ("λ", "(", ")", ".")


def free_vars(term: Term) -> frozenset[str]:
    if isinstance(term, Var):
        return frozenset((term.name,))
    if isinstance(term, Lam):
        return free_vars(term.body) - {term.var}
    return free_vars(term.fn) | free_vars(term.arg)


def all_names(term: Term) -> set[str]:
    """Every name in the term, bound or free: a fresh name must avoid all of them to stay readable."""
    if isinstance(term, Var):
        return {term.name}
    if isinstance(term, Lam):
        return {term.var} | all_names(term.body)
    return all_names(term.fn) | all_names(term.arg)


def fresh_name(base: str, avoid: set[str] | frozenset[str]) -> str:
    """`y` -> `y1`, `y2`, ...: a deterministic choice, so the corpus is the same on every machine."""
    stem = base.rstrip("0123456789'") or "v"
    index = 1
    while f"{stem}{index}" in avoid:
        index += 1
    return f"{stem}{index}"


def substitute(body: Term, name: str, value: Term, renames: list[tuple[str, str]] | None = None) -> Term:
    """body[name := value], capture-avoiding.

    A binder that would capture a free variable of `value` is alpha-renamed first; each renaming
    is appended to `renames` as (old, new) so the reasoning text can explain it.
    """
    value_free = free_vars(value)

    def go(t: Term) -> Term:
        if isinstance(t, Var):
            return value if t.name == name else t
        if isinstance(t, App):
            return App(go(t.fn), go(t.arg))
        if t.var == name or name not in free_vars(t.body):
            return t  # `name` is shadowed or absent below: nothing to replace, nothing to rename.
        if t.var in value_free:
            new_var = fresh_name(t.var, value_free | all_names(t.body) | {name})
            if renames is not None:
                renames.append((t.var, new_var))
            return Lam(new_var, go(substitute(t.body, t.var, Var(new_var))))
        return Lam(t.var, go(t.body))

    return go(body)


@dataclass(frozen=True)
class Redex:
    """One contracted beta-redex: what the reasoning line needs to describe the step."""

    lam: Lam
    arg: Term
    contractum: Term
    renames: tuple[tuple[str, str], ...]
    outermost: bool


def reduce_step(term: Term) -> tuple[Term, Redex] | None:
    """One normal-order step (leftmost-outermost redex first); None when the term is in normal form."""

    def go(t: Term, depth: int) -> tuple[Term, Redex] | None:
        if isinstance(t, Var):
            return None
        if isinstance(t, Lam):
            found = go(t.body, depth + 1)
            return None if found is None else (Lam(t.var, found[0]), found[1])
        if isinstance(t.fn, Lam):
            renames: list[tuple[str, str]] = []
            contractum = substitute(t.fn.body, t.fn.var, t.arg, renames)
            return contractum, Redex(t.fn, t.arg, contractum, tuple(renames), depth == 0)
        found = go(t.fn, depth + 1)
        if found is not None:
            return App(found[0], t.arg), found[1]
        found = go(t.arg, depth + 1)
        return None if found is None else (App(t.fn, found[0]), found[1])

    return go(term, 0)


def term_size(term: Term) -> int:
    if isinstance(term, Var):
        return 1
    if isinstance(term, Lam):
        return 1 + term_size(term.body)
    return 1 + term_size(term.fn) + term_size(term.arg)


Outcome = Literal["normal", "loop", "limit", "grows"]


@dataclass(frozen=True)
class Reduction:
    steps: tuple[tuple[Redex, Term], ...]  # each contracted redex and the whole term after it
    result: Term
    outcome: Outcome


def reduce_term(term: Term, max_steps: int = 40, max_size: int = 400) -> Reduction:
    """Normal-order reduction with limits, because many terms (Ω, Y f) never reach a normal form."""
    steps: list[tuple[Redex, Term]] = []
    current = term
    while True:
        found = reduce_step(current)
        if found is None:
            return Reduction(tuple(steps), current, "normal")
        if len(steps) == max_steps:
            return Reduction(tuple(steps), current, "limit")
        new, redex = found
        steps.append((redex, new))
        if alpha_equivalent(new, current):
            return Reduction(tuple(steps), new, "loop")
        if term_size(new) > max_size:
            return Reduction(tuple(steps), new, "grows")
        current = new


def normal_form(term: Term, max_steps: int = 1000) -> Term | None:
    """The normal form, or None if normal-order reduction does not reach one within the limits."""
    reduction = reduce_term(term, max_steps=max_steps, max_size=10_000)
    return reduction.result if reduction.outcome == "normal" else None


def alpha_equivalent(a: Term, b: Term) -> bool:
    """Equal up to the names of bound variables (compared via de Bruijn-style binder positions)."""

    def go(x: Term, y: Term, env_x: dict[str, int], env_y: dict[str, int], depth: int) -> bool:
        if isinstance(x, Var) and isinstance(y, Var):
            if x.name in env_x or y.name in env_y:
                return env_x.get(x.name) == env_y.get(y.name)
            return x.name == y.name
        if isinstance(x, Lam) and isinstance(y, Lam):
            return go(x.body, y.body, {**env_x, x.var: depth}, {**env_y, y.var: depth}, depth + 1)
        if isinstance(x, App) and isinstance(y, App):
            return go(x.fn, y.fn, env_x, env_y, depth) and go(x.arg, y.arg, env_x, env_y, depth)
        return False

    return go(a, b, {}, {}, 0)


# --------------------------------------------------------------------------------------------------
# Rendering reductions and records as text
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# The embedded default corpus
# --------------------------------------------------------------------------------------------------

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


def church(n: int) -> Term:
    body: Term = Var("x")
    for _ in range(n):
        body = App(Var("f"), body)
    return Lam("f", Lam("x", body))


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


# --------------------------------------------------------------------------------------------------
# User files
# --------------------------------------------------------------------------------------------------


class DataError(ValueError):
    """A data file that cannot be trained on; str() is one line naming the file and the problem."""


_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)


# A data file is read into memory whole (bytes, text, then tokens): beyond this it is refused.
MAX_DATA_BYTES = 2 * 2**30

# Bytes that do not occur in text (tab, newline, form feed and carriage return do).
_CONTROL_BYTES = tuple(b for b in range(32) if b not in (9, 10, 12, 13)) + (127,)


def read_training_text(path: Path) -> str:
    """Read .txt as text and .json / .jsonl as {question, reasoning, answer} records; sniff anything else.

    A JSON list may also hold plain strings, each taken as a text of its own; records with missing
    fields are skipped, and only a file with no usable entry at all is an error.
    """
    path = Path(path)
    text = _read_utf8_text(path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return text
    if suffix == ".json":
        return _render_entries(path, _parse_json(path, text))
    if suffix == ".jsonl":
        return _render_entries(path, _parse_jsonl(path, text))
    return _sniff(path, text)


def _read_utf8_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_DATA_BYTES:
            raise DataError(f"{path}: file is {size / 2**30:.1f} GiB; training data is read into memory whole, "
                            f"at most {MAX_DATA_BYTES / 2**30:.0f} GiB")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            raise DataError(f"{path}: file is {encoding} encoded (byte-order mark found); save it as UTF-8")
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is harmless; drop it
    if not raw.strip():
        raise DataError(f"{path}: file is empty" if not raw else f"{path}: file contains only whitespace")
    if b"\x00" in raw:
        if _looks_like_utf16(raw):
            raise DataError(f"{path}: file looks like UTF-16 without a byte-order mark; save it as UTF-8")
        raise DataError(f"{path}: binary file (contains NUL bytes), not text")
    controls = sum(raw.count(bytes((b,))) for b in _CONTROL_BYTES)
    if controls > 0.05 * len(raw):
        raise DataError(f"{path}: binary file (mostly non-text bytes), not text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None


def _looks_like_utf16(raw: bytes) -> bool:
    """ASCII text in UTF-16 has a NUL in every other byte."""
    sample = raw[:4096]
    even, odd = sample[0::2], sample[1::2]
    return max(even.count(0), odd.count(0)) > 0.4 * len(sample) / 2


def _parse_json(path: Path, text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, list):
        raise DataError(
            f"{path}: expected a JSON list of {{question, reasoning, answer}} records, got a {_json_type(data)}"
        )
    return data


def _parse_jsonl(path: Path, text: str) -> list[Any]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: malformed JSONL at line {number}: {exc.msg}") from None
    return entries


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _render_entries(path: Path, entries: list[Any]) -> str:
    """Records and plain strings to training text; skipped entries are fine, no usable one is not."""
    texts: list[str] = []
    missing: Counter[str] = Counter()
    for entry in entries:
        if isinstance(entry, str):
            if entry.strip():
                texts.append(entry.strip() + "\n\n")
            continue
        if not isinstance(entry, dict):
            continue
        fields = {name: _field_text(entry.get(name)) for name in RECORD_FIELDS}
        absent = [name for name, value in fields.items() if value is None]
        if absent:
            missing.update(absent)
            continue
        texts.append(format_record(fields["question"], fields["reasoning"], fields["answer"]))
    text = "".join(texts)
    if text.strip():
        return text
    if not entries:
        raise DataError(f"{path}: contains no records")
    if missing:
        names = ", ".join(f"'{name}'" for name in RECORD_FIELDS if missing[name])
        raise DataError(
            f"{path}: no usable records: none of the {len(entries)} entries has text for all of "
            f"question, reasoning and answer (missing: {names})"
        )
    raise DataError(
        f"{path}: no usable records: expected {{question, reasoning, answer}} objects or strings, "
        f"found {_json_type(entries[0])} entries"
    )


def _field_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a numeric answer is still an answer
    return None


def _sniff(path: Path, text: str) -> str:
    """Unknown suffix: records if the file parses as JSON or JSONL records, else plain text."""
    if text.lstrip()[:1] not in ("[", "{"):
        return text
    for parse in (_parse_json, _parse_jsonl):
        try:
            return _render_entries(path, parse(path, text))
        except DataError:
            continue
    return text


# --------------------------------------------------------------------------------------------------
# Corpus and batches
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    train: torch.Tensor  # 1-D uint8 token ids
    val: torch.Tensor  # 1-D uint8 token ids: the held-out tail
    source: str  # the embedded corpus's name or the file path, for the GUI and run logs


def split_sizes(n_tokens: int, validation_fraction: float) -> tuple[int, int]:
    """(train, val) sizes; val is the tail, so it is text the model never saw during training."""
    n_val = int(n_tokens * validation_fraction)
    return n_tokens - n_val, n_val


def _min_tokens(seq_len: int, validation_fraction: float) -> int:
    need = seq_len + 1
    n = max(2 * need, int(need / validation_fraction) - 2)
    while min(split_sizes(n, validation_fraction)) < need:
        n += 1
    return n


def load_corpus(data: DataSettings, seq_len: int) -> Corpus:
    """Tokenise the chosen text and split off the held-out tail; both splits must fit one window."""
    if data.path is None:
        text, source = default_corpus_text(), DEFAULT_CORPUS_SOURCE
    else:
        text, source = read_training_text(data.path), str(data.path)
    tokens = encode(text)
    n_train, n_val = split_sizes(len(tokens), data.validation_fraction)
    if min(n_train, n_val) < seq_len + 1:
        needed = _min_tokens(seq_len, data.validation_fraction)
        raise DataError(
            f"{source}: too short: {len(tokens):,} bytes, but sequence length {seq_len} with held-out "
            f"fraction {data.validation_fraction:g} needs at least {needed:,} bytes "
            f"(each split needs {seq_len + 1})"
        )
    return Corpus(train=tokens[:n_train].clone(), val=tokens[n_train:].clone(), source=source)


def get_batch(
    tokens: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows: x is tokens[o : o+T], y is tokens[o+1 : o+T+1], as int64 for embedding / CE."""
    if batch_size < 1 or seq_len < 1:
        raise ValueError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
    if tokens.dim() != 1 or tokens.numel() < seq_len + 1:
        raise ValueError(f"need a 1-D tensor of at least {seq_len + 1} tokens, got shape {tuple(tokens.shape)}")
    offsets = torch.randint(0, tokens.numel() - seq_len, (batch_size,), generator=generator)
    index = offsets[:, None] + torch.arange(seq_len + 1)
    windows = tokens.cpu()[index].long()
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
