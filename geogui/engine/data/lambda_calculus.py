"""A tiny untyped lambda calculus: terms, a parser and printer, and a real normal-order reducer with
capture-avoiding substitution. The embedded corpus is generated with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union


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


def church(n: int) -> Term:
    """The Church numeral n: λf.λx.f (f … (f x)), with n applications of f."""
    body: Term = Var("x")
    for _ in range(n):
        body = App(Var("f"), body)
    return Lam("f", Lam("x", body))
