"""Checks of a notebook's parameters (the cell tagged ``parameters`` that papermill rewrites).

A batch run passes values from the command line or a YAML file; a typo there must
stop the notebook at once with an error that names the parameter and says what it
must be, not fail later with a NaN or a shape error.  Every function returns the
value (normalized: ``float`` for numbers, ``list`` for sequences) or raises
``ValueError("NAME must be ..., got ...")``.  Booleans are never accepted as numbers.

Usage in a notebook::

    from llm_auction_utils.workbook import parameters as check
    check.integer("SEED", SEED, low=0)
    LAMBDAS = check.number_list("LAMBDA_GRID", LAMBDA_GRID, low=0, high=1, min_len=2, increasing=True)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from ..theory.validation import check_bid

__all__ = ["bid_profiles", "boolean", "check_parameters", "choices", "integer", "number", "number_list", "text"]


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _range_text(low: float | None, high: float | None, low_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}]"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" <= {high:g}"
    return ""


def _in_range(x: float, low: float | None, high: float | None, low_open: bool) -> bool:
    if low is not None and (x <= low if low_open else x < low):
        return False
    return high is None or x <= high


def integer(name: str, value: Any, *, low: int | None = None) -> int:
    """An integer (not a bool), at least ``low``."""
    if not (isinstance(value, int) and not isinstance(value, bool)) or (low is not None and value < low):
        raise ValueError(f"{name} must be an integer{_range_text(low, None, False)}, got {value!r}")
    return value


def number(name: str, value: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False) -> float:
    """A finite number (not a bool) in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if not _is_number(value) or not _in_range(float(value), low, high, low_open):
        raise ValueError(f"{name} must be a finite number{_range_text(low, high, low_open)}, got {value!r}")
    return float(value)


def boolean(name: str, value: Any) -> bool:
    """``True`` or ``False`` (not 0/1, not the string ``"False"``)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def number_list(
    name: str,
    value: Any,
    *,
    min_len: int = 1,
    length: int | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    increasing: bool = False,
) -> list[float]:
    """A list (or tuple) of finite numbers in the range: at least ``min_len`` of them (exactly
    ``length`` when given), strictly increasing if asked."""
    count = f"exactly {length}" if length is not None else f"at least {min_len}"
    what = (f"a list of {count} {'strictly increasing ' if increasing else ''}finite numbers"
            f"{_range_text(low, high, low_open)}")
    ok = isinstance(value, (list, tuple)) and (len(value) == length if length is not None else len(value) >= min_len)
    ok = ok and all(_is_number(x) and _in_range(float(x), low, high, low_open) for x in value)
    if ok and increasing:
        ok = all(a < b for a, b in zip(value, value[1:]))
    if not ok:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return [float(x) for x in value]


def choices(name: str, value: Any, options: Sequence[str], *, min_len: int = 1) -> list[str]:
    """A list of distinct strings, each one of ``options``."""
    ok = (isinstance(value, (list, tuple)) and len(value) >= min_len and len(set(map(repr, value))) == len(value)
          and all(isinstance(x, str) and x in options for x in value))
    if not ok:
        raise ValueError(f"{name} must list distinct values among {', '.join(map(repr, options))}, got {value!r}")
    return list(value)


def _valid_bid(b: Any, positive: bool) -> bool:
    try:
        return check_bid(b) > 0 or not positive
    except (TypeError, ValueError):
        return False


def bid_profiles(name: str, value: Any, agents: Sequence[str], *, positive: bool = False) -> list[list[float]]:
    """A non-empty list of bid profiles, each one finite bid per agent, ``>= 0`` and not all 0 (``> 0`` if ``positive``)."""
    n = len(agents)
    if not (isinstance(value, (list, tuple)) and value):
        raise ValueError(f"{name} must be a non-empty list of bid profiles, got {value!r}")
    for prof in value:
        ok = isinstance(prof, (list, tuple)) and len(prof) == n and all(_valid_bid(b, positive) for b in prof)
        if not ok or not any(b > 0 for b in prof):
            rule = "> 0" if positive else ">= 0, not all 0"
            raise ValueError(f"{name}: {prof!r} must list {n} bids {rule}, one per agent of {list(agents)}")
    return [[float(b) for b in prof] for prof in value]


# --------------------------------------------------------------------------- declarative checks


def text(name: str, value: Any, *, options: Sequence[str] | None = None) -> str:
    """A non-empty string, one of ``options`` when given."""
    ok = isinstance(value, str) and bool(value.strip()) and (options is None or value in options)
    if not ok:
        what = f"one of {', '.join(map(repr, options))}" if options is not None else "a non-empty string"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


_CHECKS = {
    "integer": integer,
    "number": number,
    "boolean": boolean,
    "number_list": number_list,
    "choices": choices,
    "text": text,
}


def check_parameters(namespace: dict[str, Any], **spec: tuple[str, dict[str, Any]] | str) -> dict[str, Any]:
    """Check a notebook's parameters in one call, against a declarative description.

    ``spec`` maps each parameter's name to its kind and options: a kind alone
    (``"boolean"``) or a pair ``("number", {"low": 0, "low_open": True})``.  Kinds:
    ``integer``, ``number``, ``boolean``, ``number_list``, ``choices`` (needs ``options``),
    ``text`` (optionally ``options``).  Each value is read from ``namespace`` (the notebook's
    ``globals()``), checked, and written back normalized (``float`` numbers, ``list``
    sequences).  The first bad value raises ``ValueError("NAME must be ..., got ...")``;
    a declared name the notebook does not define is an error too.  Returns the checked
    values.

    Usage in a notebook::

        check_parameters(globals(), SEED=("integer", {"low": 0}), GREEDY="boolean",
                         LAMBDA_GRID=("number_list", {"min_len": 2, "low": 0, "high": 1, "increasing": True}))
    """
    checked: dict[str, Any] = {}
    for name, entry in spec.items():
        kind, options = (entry, {}) if isinstance(entry, str) else entry
        if kind not in _CHECKS:
            raise ValueError(f"unknown parameter kind {kind!r} for {name}; use one of {', '.join(_CHECKS)}")
        if name not in namespace:
            raise ValueError(f"parameter {name} is declared but the notebook does not define it")
        value = namespace[name]
        if kind == "choices":
            opts = dict(options)
            checked[name] = choices(name, value, opts.pop("options"), **opts)
        else:
            checked[name] = _CHECKS[kind](name, value, **options)
        namespace[name] = checked[name]
    return checked
