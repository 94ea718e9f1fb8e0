"""Shared pytest fixtures.

``default_model`` loads the offline default model (Gemma 3 270M) once per test
session through :func:`llm_auction_utils.llm.models.load_model`; when its converted
copy is not cached yet it prepares it first (about two minutes, once).  Tests
that use it are marked ``@pytest.mark.model``; deselect with ``-m "not model"``.
``tiny_model`` is a tiny random Gemma 3 built in code (seconds, no files): the
engine's mechanics are tested on it.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# The test command runs hypothesis derandomized (profile "ci"): the same examples on every
# run, so a green run stays green.  HYPOTHESIS_PROFILE=default explores new examples.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _environment_restored():
    """Every test leaves the process environment as it found it (a library that sets, say,
    OMP_NUM_THREADS would otherwise slow down every notebook kernel that nbval starts later)."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def default_model():
    """The default model and tokenizer (:class:`~llm_auction_utils.llm.models.LoadedModel`), loaded once."""
    from llm_auction_utils.llm.models import (
        DEFAULT_MODEL,
        is_default_model_prepared,
        load_model,
        prepare_default_model,
    )

    if not is_default_model_prepared():
        prepare_default_model(verbose=True)
    return load_model(DEFAULT_MODEL, device="auto", dtype="float32")


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny randomly initialised Gemma 3 built from a config (no download, vocabulary of about
    700 byte-level BPE tokens): the engine's mechanics do not depend on what the model says."""
    from llm_auction_utils.llm.models import TINY_MODEL, load_model

    return load_model(TINY_MODEL, device="cpu")


@pytest.fixture(scope="session")
def tiny_model_b():
    """A second tiny model with other random weights and the same tokenizer (multi-model agents)."""
    from llm_auction_utils.llm.models import tiny_random_model

    return tiny_random_model(seed=1, device="cpu")
