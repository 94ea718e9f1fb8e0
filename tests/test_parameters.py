"""Notebook parameter checks: every bad value is refused with the parameter's name."""

from __future__ import annotations

import math

import pytest

from llm_auction_utils.workbook import parameters as check


def test_integer():
    assert check.integer("SEED", 3, low=0) == 3
    for bad in [-1, 1.0, True, "3", None]:
        with pytest.raises(ValueError, match=r"^SEED must be an integer >= 0, got"):
            check.integer("SEED", bad, low=0)


def test_number():
    assert check.number("TEMPERATURE", 1) == 1.0 and isinstance(check.number("T", 1), float)
    for bad in [0, -1, math.inf, math.nan, False, "0.7"]:
        with pytest.raises(ValueError, match=r"^TEMPERATURE must be a finite number > 0, got"):
            check.number("TEMPERATURE", bad, low=0, low_open=True)
    with pytest.raises(ValueError, match=r"in \[2, 10\]"):
        check.number("SE_MULTIPLE", 11, low=2, high=10)


def test_boolean():
    assert check.boolean("GREEDY", False) is False
    for bad in [0, 1, "False", None]:
        with pytest.raises(ValueError, match=r"^GREEDY must be True or False"):
            check.boolean("GREEDY", bad)


def test_number_list():
    assert check.number_list("LAMBDA_GRID", (0, 0.5, 1), min_len=2, low=0, high=1, increasing=True) == [0.0, 0.5, 1.0]
    for bad in [[0.5], [0, 1.5], [0.5, 0.2], [0, 0], "0, 1", [0, None], [0, math.nan], 0.5]:
        with pytest.raises(ValueError, match=r"^LAMBDA_GRID must be a list of at least 2 strictly increasing"):
            check.number_list("LAMBDA_GRID", bad, min_len=2, low=0, high=1, increasing=True)


def test_choices():
    assert check.choices("RULES", ["log_linear"], ["linear", "log_linear"]) == ["log_linear"]
    for bad in [[], ["linear", "linear"], ["max"], "linear", [1]]:
        with pytest.raises(ValueError, match=r"^RULES must list distinct values among 'linear', 'log_linear'"):
            check.choices("RULES", bad, ["linear", "log_linear"])


def test_bid_profiles():
    agents = ["A", "B", "C"]
    assert check.bid_profiles("P", [[1, 0, 2]], agents) == [[1.0, 0.0, 2.0]]
    with pytest.raises(ValueError, match=r"^P must be a non-empty list"):
        check.bid_profiles("P", [], agents)
    for bad in [[1, 2], [0, 0, 0], [1, -1, 1], [1, math.inf, 1], [1, True, 1]]:
        with pytest.raises(ValueError, match=r"^P: .* must list 3 bids"):
            check.bid_profiles("P", [bad], agents)
    with pytest.raises(ValueError, match=r"must list 3 bids > 0"):
        check.bid_profiles("P", [[1, 0, 2]], agents, positive=True)


def test_check_parameters_declarative():
    ns = {"SEED": 3, "T": 1, "GRID": (0, 1), "RULES": ["linear"], "GREEDY": True, "MODEL": "gemma-3-270m"}
    out = check.check_parameters(
        ns, SEED=("integer", {"low": 0}), T=("number", {"low": 0, "low_open": True}),
        GRID=("number_list", {"min_len": 2, "increasing": True}),
        RULES=("choices", {"options": ["linear", "log_linear"]}), GREEDY="boolean", MODEL="text",
    )
    assert out["T"] == 1.0 and isinstance(ns["T"], float) and ns["GRID"] == [0.0, 1.0]
    with pytest.raises(ValueError, match=r"^SEED must be an integer >= 0, got -1"):
        check.check_parameters({"SEED": -1}, SEED=("integer", {"low": 0}))
    with pytest.raises(ValueError, match=r"parameter MISSING is declared but the notebook does not define it"):
        check.check_parameters({}, MISSING="boolean")
    with pytest.raises(ValueError, match=r"unknown parameter kind 'float'"):
        check.check_parameters({"X": 1.0}, X="float")
    with pytest.raises(ValueError, match=r"^DEVICE must be one of 'auto', 'cpu'"):
        check.check_parameters({"DEVICE": "tpu"}, DEVICE=("text", {"options": ["auto", "cpu", "cuda"]}))


def test_number_list_exact_length():
    assert check.number_list("BIDS", [1, 2, 3], length=3, low=0) == [1.0, 2.0, 3.0]
    for bad in [[1, 2], [1, 2, 3, 4]]:
        with pytest.raises(ValueError, match=r"^BIDS must be a list of exactly 3 finite numbers >= 0"):
            check.number_list("BIDS", bad, length=3, low=0)
