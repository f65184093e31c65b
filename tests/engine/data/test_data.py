"""Tests for the tokenizer, the lambda-calculus reducer, the embedded corpus, user files and batches."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from geogui.engine.data import (
    DEFAULT_CORPUS_SOURCE,
    STEP_SEPARATOR,
    VOCAB_SIZE,
    App,
    Corpus,
    DataError,
    Lam,
    Var,
    alpha_equivalent,
    church,
    decode,
    default_corpus_text,
    encode,
    format_record,
    generate_corpus_text,
    get_batch,
    load_corpus,
    normal_form,
    parse_term,
    read_training_text,
    reduce_step,
    reduce_term,
    reduction_record,
    show_term,
    substitute,
)
from geogui.settings import DataSettings

SAMPLE = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "lambda_qa_sample.json"

RECORDS = [
    {"question": "((λx.x) y)", "reasoning": "Apply the identity - yields y. - y", "answer": "y"},
    {"question": "((λx.(λy.x)) a)", "reasoning": "step one\n####\nstep two", "answer": "(λy.a)"},
    {"question": "((λz.z) 7)", "reasoning": "numeric answer", "answer": 7},
]


def nf(source: str) -> str:
    result = normal_form(parse_term(source))
    assert result is not None, f"{source} has no normal form"
    return show_term(result)


def split_records(text: str) -> list[tuple[str, list[str], str]]:
    """(question, reasoning lines, answer) of every record in corpus text."""
    records = []
    for block in text.split("\n\n"):
        if not block:
            continue
        match = re.fullmatch(r"Q: (.*)\nReasoning:\n(.*)\nA: (.*)", block, flags=re.S)
        assert match, f"malformed record: {block[:200]!r}"
        question, reasoning, answer = match.groups()
        records.append((question, reasoning.split(STEP_SEPARATOR), answer))
    return records


# ---------------------------------------------------------------------------------------------- tokenizer


def test_encode_decode_round_trip_with_non_ascii() -> None:
    text = "(λx.(x y)) — naïve ✓ 🙂"
    ids = encode(text)
    assert ids.dtype == torch.uint8 and ids.dim() == 1
    assert ids.numel() == len(text.encode("utf-8"))
    assert int(ids.max()) < VOCAB_SIZE
    assert decode(ids) == text
    assert decode(ids.tolist()) == text
    assert decode(ids.long()) == text  # model output comes back as int64


def test_encode_empty_and_decode_of_a_cut_character() -> None:
    assert encode("").numel() == 0 and encode("").dtype == torch.uint8
    assert decode([]) == ""
    lam = encode("λ").tolist()
    assert len(lam) == 2
    assert decode(lam[:1]) == "\ufffd"  # half a character is replaced, not an exception


# ---------------------------------------------------------------------------------------------- lambda calculus


def test_parse_and_show_round_trip() -> None:
    term = parse_term("λx.λy.x y (λz.z)")
    assert term == Lam("x", Lam("y", App(App(Var("x"), Var("y")), Lam("z", Var("z")))))
    assert show_term(term) == "(λx.(λy.((x y) (λz.z))))"
    assert parse_term(show_term(term)) == term
    assert parse_term("\\x.x") == Lam("x", Var("x"))
    with pytest.raises(ValueError):
        parse_term("(λx.x")


def test_reducer_on_hand_checked_terms() -> None:
    assert nf("((λx.x) y)") == "y"
    assert nf("(λx.λy.x) a b") == "a"  # K
    assert nf("(λx.λy.λz.x z (y z)) (λx.λy.x) (λx.λy.x) a") == "a"  # S K K = I
    assert nf("(λx.(λy.(x (λz.(x z))))) (λw.w)") == "(λy.(λz.z))"  # first record of the user's sample
    assert nf("(λp.λq.p q p) (λt.λf.t) (λt.λf.f)") == "(λt.(λf.f))"  # and true false = false


def test_church_arithmetic() -> None:
    plus = parse_term("λm.λn.λf.λx.m f (n f x)")
    mult = parse_term("λm.λn.λf.m (n f)")
    succ = parse_term("λn.λf.λx.f (n f x)")
    for result, expected in [
        (normal_form(App(App(plus, church(2)), church(3))), 5),
        (normal_form(App(App(mult, church(2)), church(3))), 6),
        (normal_form(App(succ, church(0))), 1),
    ]:
        assert result is not None and alpha_equivalent(result, church(expected)), show_term(result)
    assert not alpha_equivalent(church(2), church(3))


def test_substitution_renames_to_avoid_capture() -> None:
    renames: list[tuple[str, str]] = []
    result = substitute(parse_term("λy.x y"), "x", Var("y"), renames)
    assert result == Lam("y1", App(Var("y"), Var("y1")))  # the free y stays free
    assert renames == [("y", "y1")]
    assert nf("((λx.(λy.(x y))) y)") == "(λy1.(y y1))"
    # No renaming when it is not needed, and shadowed variables are left alone.
    assert substitute(parse_term("λy.x y"), "x", Var("a")) == parse_term("λy.a y")
    assert substitute(parse_term("λx.x"), "x", Var("y")) == parse_term("λx.x")


def test_normal_order_reduces_leftmost_outermost_first() -> None:
    stepped = reduce_step(parse_term("(λx.a) ((λy.y) b)"))
    assert stepped is not None and stepped[0] == Var("a")
    assert stepped[1].outermost
    # No redex at the root: the leftmost one (in the function part) goes before the argument's.
    stepped = reduce_step(parse_term("((λx.x) a) ((λy.y) b)"))
    assert stepped is not None and show_term(stepped[0]) == "(a ((λy.y) b))"
    assert not stepped[1].outermost
    stepped = reduce_step(parse_term("c ((λy.y) b)"))
    assert stepped is not None and show_term(stepped[0]) == "(c b)"
    # Normal order discards a divergent argument that applicative order would loop on.
    assert nf("(λx.a) ((λx.x x) (λx.x x))") == "a"
    assert reduce_step(parse_term("λx.x y")) is None


def test_non_terminating_terms_stop() -> None:
    omega = reduce_term(parse_term("(λx.x x) (λx.x x)"))
    assert omega.outcome == "loop" and len(omega.steps) == 1
    y_g = reduce_term(parse_term("(λf.(λx.f (x x)) (λx.f (x x))) g"), max_steps=10)
    assert y_g.outcome in ("limit", "grows") and len(y_g.steps) <= 10
    assert normal_form(parse_term("(λx.x x) (λx.x x)")) is None
    _, reasoning, answer = reduction_record(parse_term("(λx.x x) (λx.x x)"), omega)
    assert answer.startswith("no normal form")
    assert "Stop:" in reasoning.split(STEP_SEPARATOR)[-1]


def test_reduction_record_format() -> None:
    term = parse_term("((λx.(λy.(x y))) y) a")
    question, reasoning, answer = reduction_record(term, reduce_term(term))
    steps = reasoning.split(STEP_SEPARATOR)
    assert question == "(((λx.(λy.(x y))) y) a)"
    assert answer == "(y a)"
    assert len(steps) == 2
    assert steps[0].startswith("Apply inner function: replace x with y in (λy.(x y))")
    assert "Rename the bound y to y1" in steps[0]
    assert steps[0].endswith(" - ((λy1.(y y1)) a)")
    assert steps[1].endswith(" - (y a)")


# ---------------------------------------------------------------------------------------------- default corpus


def test_default_corpus_is_deterministic_and_cached() -> None:
    first = default_corpus_text()
    assert default_corpus_text() is first
    assert generate_corpus_text() == first
    assert generate_corpus_text(seed=1, target_bytes=20_000) != generate_corpus_text(seed=2, target_bytes=20_000)


def test_default_corpus_is_identical_in_a_fresh_process() -> None:
    """Another process with another hash seed: set ordering must not leak into the text."""
    code = (
        "import hashlib; from geogui.engine.data import default_corpus_text as d; "
        "print(hashlib.sha256(d().encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == hashlib.sha256(default_corpus_text().encode()).hexdigest()


def test_default_corpus_size_and_speed() -> None:
    start = time.perf_counter()
    text = generate_corpus_text()
    elapsed = time.perf_counter() - start
    assert 600_000 <= len(text.encode("utf-8")) <= 1_000_000
    assert len(split_records(text)) >= 1_000
    assert elapsed < 5.0  # about 0.2 s in practice; generous for slow CI machines


def test_default_corpus_reductions_are_correct() -> None:
    """Every record: each step is one normal-order step of the previous term, ending at the answer."""
    records = split_records(default_corpus_text())
    kinds = {"identity": 0, "rename": 0, "diverges": 0}
    for question, lines, answer in records:
        term = parse_term(question)
        for line in lines:
            if line.startswith("Stop:"):
                assert answer.startswith("no normal form")
                kinds["diverges"] += 1
                break
            stepped = reduce_step(term)
            assert stepped is not None, question
            term = stepped[0]
            assert line.endswith(" - " + show_term(term)), (question, line)
            kinds["identity"] += "identity function" in line
            kinds["rename"] += "Rename the bound" in line
        else:
            assert reduce_step(term) is None and show_term(term) == answer, question
    assert all(count >= 20 for count in kinds.values()), kinds


def test_default_corpus_contains_known_reductions() -> None:
    text = default_corpus_text()
    identity = re.findall(r"so \(\(λ(\w+)\.(\w+)\) (\w+)\) yields (\w+)\.", text)
    assert identity, "no identity application on a variable"
    for bound, body, arg, result in identity:
        assert bound == body and arg == result
    renamed = re.findall(r"Rename the bound (\w+) to (\w+) first: (\w+) is free in", text)
    assert renamed
    for old, new, free in renamed:
        assert old == free and new != old and new.startswith(old)


# ---------------------------------------------------------------------------------------------- user files


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_sample_dataset_loads() -> None:
    if not SAMPLE.is_file():
        pytest.skip("the user's sample dataset is not present")
    records = json.loads(SAMPLE.read_text(encoding="utf-8"))
    corpus = load_corpus(DataSettings(path=SAMPLE), seq_len=128)
    assert corpus.source == str(SAMPLE)
    text = decode(torch.cat([corpus.train, corpus.val]))
    first, last = records[0], records[-1]
    assert format_record(first["question"], first["reasoning"], first["answer"]) in text
    assert text.endswith(format_record(last["question"], last["reasoning"], last["answer"]))


def test_json_and_jsonl_records_round_trip(tmp_path: Path) -> None:
    expected = "".join(format_record(r["question"], r["reasoning"], str(r["answer"])) for r in RECORDS)
    jsonl = write_jsonl(tmp_path / "records.jsonl", RECORDS)
    as_json = tmp_path / "records.json"
    as_json.write_text(json.dumps(RECORDS), encoding="utf-8")
    assert read_training_text(jsonl) == expected
    assert read_training_text(as_json) == expected
    assert "Q: ((λx.x) y)\nReasoning:\nApply the identity - yields y. - y\nA: y\n\n" in expected


def test_records_missing_fields_are_skipped_and_strings_accepted(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mixed.jsonl", [RECORDS[0], {"question": "lonely"}, "a plain text", 3])
    text = read_training_text(path)
    assert "Q: ((λx.x) y)" in text
    assert "lonely" not in text
    assert "a plain text\n\n" in text


def test_txt_and_sniffed_files(tmp_path: Path) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text('[not json] λ text\n', encoding="utf-8")
    assert read_training_text(txt) == "[not json] λ text\n"
    sniffed_records = write_jsonl(tmp_path / "records.data", RECORDS[:2])
    assert read_training_text(sniffed_records).startswith("Q: ((λx.x) y)\n")
    sniffed_text = tmp_path / "story"
    sniffed_text.write_text("{ a brace, but not JSON\n", encoding="utf-8")
    assert read_training_text(sniffed_text) == "{ a brace, but not JSON\n"
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfhello")
    assert read_training_text(bom) == "hello"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"  \n\t\n", "only whitespace"),
        ("nul.txt", b"abc\x00\x01\x02\xff\xfe" * 20, "binary"),
        ("controls.txt", bytes(range(1, 9)) * 50 + b"text", "binary"),
        ("utf16.txt", "λ hello".encode("utf-16"), "UTF-16"),
        ("utf16-nobom.txt", "hello world".encode("utf-16-le"), "UTF-16"),
        ("latin1.txt", "café crème".encode("latin-1"), "not UTF-8"),
        ("broken.json", b'[\n  {"question": "q",\n  "answer": }\n]', "malformed JSON at line 3"),
        ("object.json", b'{"question": "q"}', "expected a JSON list"),
        ("broken.jsonl", b'{"question": "q", "reasoning": "r", "answer": "a"}\n{oops\n', "malformed JSONL at line 2"),
        ("fields.json", b'[{"question": "q"}, {"question": "q", "answer": "a"}]', "'reasoning'"),
        ("nothing.jsonl", b"\n\n", "only whitespace"),
        ("numbers.json", b"[1, 2, 3]", "no usable records"),
        ("emptylist.json", b"[]", "no records"),
    ],
)
def test_bad_files_raise_one_line_data_error(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_training_text(path)
    message = str(info.value)
    assert name in message
    assert expected in message
    assert "\n" not in message


def test_missing_fields_message_names_all_missing_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "partial.jsonl", [{"question": "q"}, {"reasoning": "r"}])
    with pytest.raises(DataError, match="partial.jsonl") as info:
        read_training_text(path)
    assert all(f"'{field}'" in str(info.value) for field in ("question", "reasoning", "answer"))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.txt: file not found"):
        read_training_text(tmp_path / "missing.txt")
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    with pytest.raises(DataError, match=r"folder\.txt"):
        read_training_text(folder)


# ---------------------------------------------------------------------------------------------- corpus


def test_default_corpus_split() -> None:
    corpus = load_corpus(DataSettings(validation_fraction=0.2), seq_len=64)
    assert isinstance(corpus, Corpus)
    assert corpus.source == DEFAULT_CORPUS_SOURCE
    total = encode(default_corpus_text())
    assert corpus.train.dtype == corpus.val.dtype == torch.uint8
    assert corpus.val.numel() == int(total.numel() * 0.2)
    assert torch.equal(torch.cat([corpus.train, corpus.val]), total)  # val is the tail


def test_too_short_file_names_sizes(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("x" * 100, encoding="utf-8")
    settings = DataSettings(path=path, validation_fraction=0.1)
    with pytest.raises(DataError) as info:
        load_corpus(settings, seq_len=64)
    message = str(info.value)
    assert "short.txt" in message and "100 bytes" in message and "650 bytes" in message
    # The stated minimum is exact: one byte less fails, that many loads with both splits usable.
    path.write_text("x" * 649, encoding="utf-8")
    with pytest.raises(DataError):
        load_corpus(settings, seq_len=64)
    path.write_text("x" * 650, encoding="utf-8")
    corpus = load_corpus(settings, seq_len=64)
    assert corpus.train.numel() >= 65 and corpus.val.numel() == 65


def test_default_corpus_too_short_for_huge_windows() -> None:
    with pytest.raises(DataError, match=DEFAULT_CORPUS_SOURCE):
        load_corpus(DataSettings(validation_fraction=0.01), seq_len=16384)


# ---------------------------------------------------------------------------------------------- batches


def test_get_batch_windows() -> None:
    tokens = torch.arange(200, dtype=torch.int64).to(torch.uint8)  # each value names its offset
    x, y = get_batch(tokens, batch_size=8, seq_len=16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 16)
    assert x.dtype == y.dtype == torch.int64 and x.device.type == "cpu"
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x, y):
        offset = int(row_x[0])
        assert offset + 16 < 200
        assert torch.equal(row_x, tokens[offset : offset + 16].long())
        assert torch.equal(row_y, tokens[offset + 1 : offset + 17].long())


def test_get_batch_is_deterministic_per_seed() -> None:
    tokens = encode(default_corpus_text()[:5000])
    a = get_batch(tokens, 4, 32, torch.Generator().manual_seed(7))
    b = get_batch(tokens, 4, 32, torch.Generator().manual_seed(7))
    c = get_batch(tokens, 4, 32, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_get_batch_edge_cases() -> None:
    tokens = torch.arange(17, dtype=torch.uint8)
    x, y = get_batch(tokens, 3, 16, torch.Generator().manual_seed(0))  # exactly one window fits
    assert torch.equal(x, tokens[:16].long().expand(3, 16))
    assert torch.equal(y, tokens[1:].long().expand(3, 16))
    with pytest.raises(ValueError):
        get_batch(tokens, 3, 17, torch.Generator())
