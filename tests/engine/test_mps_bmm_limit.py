"""On MPS a size is refused when one batched matmul of a step would pass 2**31 elements (torch's MPS
bmm is silently wrong past 2**32). The sizes here are computed by hand."""

from __future__ import annotations

import pytest

from geogui.engine.memory_estimate import (
    MPS_BMM_LIMIT,
    MemoryEstimateError,
    check_fits,
    largest_mps_bmm,
    largest_mps_bmm_elements,
    refuse_if_too_big,
)
from geogui.settings import Mode, Settings

PLENTY = 2**60  # bytes: only the bmm limit can refuse


def settings(batch: int, **model) -> Settings:
    return Settings.model_validate({"run": {"batch_size": batch}, "model": model, "device": {"device": "mps"}})


def test_attention_scores_of_all_presentations_in_one_pass():
    # 8 presentations x 64 x 4 heads x 2048 x 2048 = 2**3 * 2**6 * 2**2 * 2**22 = 2**33
    big = settings(64, seq_len=2048, n_heads=4, d_model=256, expert_hidden=512)
    assert largest_mps_bmm_elements(big) == 2**33
    assert largest_mps_bmm_elements(big, Mode.STANDARD) == 2**30  # one pass: 64 x 4 x 2048 x 2048
    assert largest_mps_bmm_elements(big, Mode.GEOMETRIC_FAST) == 2**30
    problem = check_fits(big, PLENTY, "mps")
    assert problem == (
        "too large for MPS: one batched matmul of a step would hold 8,589,934,592 elements (attention scores: "
        "8 presentations x batch 64 x 4 heads x 2048 x 2048 positions), over the 2**31 that torch's MPS "
        "matmul is trusted with (it silently computes wrong values past 2**32). Lower the batch size, "
        "sequence length, attention heads or presentations per pass")
    # One presentation per pass: attention 2**30; the Gram matrix 8 x 64 x 2048 x 256 = 2**28 is next.
    chunked = big.model_copy(update={"model": big.model.model_copy(update={"presentation_chunk": 1})})
    assert largest_mps_bmm_elements(chunked) == 2**30
    assert check_fits(chunked, PLENTY, "mps") is None


def test_the_geometric_experts_baddbmm():
    # 8 presentations x (32 x 1024 tokens) x 16384 hidden = 2**3 * 2**15 * 2**14 = 2**32; attention is
    # 8 x 32 x 1 x 1024 x 1024 = 2**28 and the Gram matrix 8 x 2**15 x 512 = 2**27.
    wide = settings(32, seq_len=1024, n_heads=1, d_model=512, expert_hidden=16384)
    largest = largest_mps_bmm(wide)
    assert largest.elements == 2**32
    assert largest.what == "geometric experts: 8 presentations x batch 32 x 1024 positions x expert hidden size 16384"
    problem = check_fits(wide, PLENTY, "mps")
    assert "would hold 4,294,967,296 elements" in problem
    assert problem.endswith("Lower the batch size, sequence length, expert hidden size or presentations per pass")
    # Two per pass: 2**30.
    halved = wide.model_copy(update={"model": wide.model.model_copy(update={"presentation_chunk": 2})})
    assert largest_mps_bmm_elements(halved) == 2**30


def test_the_gram_matrix_holds_every_presentation_whatever_the_chunk():
    # 8 x (64 x 4096 tokens) x width 2048 = 2**3 * 2**18 * 2**11 = 2**32, whatever presentation_chunk
    # is; with one per pass attention is 64 x 1 x 4096**2 = 2**30 and the experts 2**18 x 2048 = 2**29.
    gram = settings(64, seq_len=4096, n_heads=1, d_model=2048, expert_hidden=8, presentation_chunk=1)
    largest = largest_mps_bmm(gram)
    assert largest.elements == 2**32 and largest.what.startswith("Gram matrix of the hidden states: 8 presentations")
    assert check_fits(gram, PLENTY, "mps").endswith("Lower the batch size, sequence length or model width")


def test_the_limit_is_2_to_the_31_inclusive():
    # One expert, no ghosts: one presentation, no Gram matrix; attention 64 x 8 x 2048 x 2048 = 2**31.
    edge = settings(64, seq_len=2048, n_heads=8, d_model=64, expert_hidden=64, num_experts=1,
                    num_ghost_experts=0, top_k=1)
    assert largest_mps_bmm_elements(edge) == MPS_BMM_LIMIT == 2**31
    assert check_fits(edge, PLENTY, "mps") is None
    over = edge.model_copy(update={"run": edge.run.model_copy(update={"batch_size": 65})})
    assert largest_mps_bmm_elements(over) == 65 * 8 * 2048 * 2048
    assert check_fits(over, PLENTY, "mps").startswith("too large for MPS: ")
    # Only MPS has the limit; the device setting picks it when no device type is given.
    assert check_fits(over, PLENTY, "cpu") is None and check_fits(over, PLENTY, "cuda") is None
    assert check_fits(over, PLENTY).startswith("too large for MPS: ")
    auto = over.model_copy(update={"device": over.device.model_copy(update={"device": "auto"})})
    assert check_fits(auto, PLENTY) is None


def test_refuse_if_too_big_on_mps_raises_it():
    over = settings(65, seq_len=2048, n_heads=8, d_model=64, expert_hidden=64, num_experts=1,
                    num_ghost_experts=0, top_k=1)
    with pytest.raises(MemoryEstimateError, match="too large for MPS"):
        refuse_if_too_big(over, PLENTY, "mps")
    refuse_if_too_big(over, PLENTY, "cpu")

