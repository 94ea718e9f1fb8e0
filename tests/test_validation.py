"""Unit tests for the shared validators: every bad input gets a clear ValueError."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm_auction_utils.theory.validation import (
    as_bid_grid,
    as_bids,
    as_distributions,
    check_agent,
    dists_and_bids,
    like,
)


def test_valid_distributions_pass_through_numpy_and_torch():
    d = [[0.5, 0.5], [0.2, 0.8]]
    a = as_distributions(d)
    assert isinstance(a, np.ndarray) and a.dtype == np.float64
    t = as_distributions(torch.tensor(d, dtype=torch.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32


def test_row_sum_message_names_row_and_tolerance():
    d = [[0.5, 0.5], [0.5, 0.5], [0.5, 0.43]]
    with pytest.raises(ValueError, match=r"dists row 2 sums to 0\.93, expected 1 \(atol=1e-4\)"):
        as_distributions(d)


def test_batched_row_index_is_a_tuple():
    d = np.full((2, 3, 2), 0.5)
    d[1, 2] = [0.9, 0.3]
    with pytest.raises(ValueError, match=r"row \(1, 2\) sums to 1\.2"):
        as_distributions(d)


@pytest.mark.parametrize(
    ("bad", "msg"),
    [
        ([[0.5, np.nan]], "dists contain NaN"),
        ([[np.inf, 0.5]], "dists contain inf"),
        ([[1.5, -0.5]], "negative probability"),
        ([0.5, 0.5], "at least 2 dimensions"),
        (np.zeros((2, 0)), "empty vocabulary"),
    ],
)
def test_bad_distributions(bad, msg):
    with pytest.raises(ValueError, match=msg):
        as_distributions(bad)


def test_non_numeric_distributions_are_a_type_error():
    with pytest.raises(TypeError, match="numeric"):
        as_distributions("abc")


def test_torch_bad_distributions_detected_without_false_pass():
    with pytest.raises(ValueError, match="NaN"):
        as_distributions(torch.tensor([[0.5, float("nan")]]))
    with pytest.raises(ValueError, match="negative"):
        as_distributions(torch.tensor([[1.5, -0.5]]))


@pytest.mark.parametrize(
    ("bids", "n", "msg"),
    [
        ([1.0, np.nan], 2, "bids contain NaN"),
        ([1.0, np.inf], 2, "bids contain inf"),
        ([1.0, -0.5], 2, r"bid of agent 1 is negative \(-0\.5\)"),
        ([0.0, 0.0], 2, "all bids are zero"),
        ([1.0, 2.0], 3, "dists has 3 agents but bids has 2"),
        (1.0, None, "scalar"),
    ],
)
def test_bad_bids(bids, n, msg):
    with pytest.raises(ValueError, match=msg):
        as_bids(bids, n)


def test_all_zero_bids_in_a_batch_item_and_allowed_flag():
    with pytest.raises(ValueError, match=r"all bids are zero in batch item 1"):
        as_bids([[1.0, 0.0], [0.0, 0.0]])
    assert as_bids([0.0, 0.0], allow_all_zero=True).tolist() == [0.0, 0.0]


def test_dists_and_bids_moves_bids_to_the_tensor_dtype():
    d = torch.tensor([[0.5, 0.5], [0.1, 0.9]], dtype=torch.float32)
    _, b = dists_and_bids(d, [1, 2])
    assert isinstance(b, torch.Tensor) and b.dtype == torch.float32
    assert like(torch.tensor([1.0]), np.zeros(1)).dtype == np.float64


def test_agent_and_grid_validation():
    assert check_agent(1, 2) == 1
    with pytest.raises(ValueError, match="agent 2 out of range for 2 agents"):
        check_agent(2, 2)
    with pytest.raises(TypeError):
        check_agent(1.0, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-decreasing"):
        as_bid_grid([0, 2, 1])
    with pytest.raises(ValueError, match="negative"):
        as_bid_grid([-1, 0])
    with pytest.raises(ValueError, match="NaN or inf"):
        as_bid_grid([0, np.nan])
