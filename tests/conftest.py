"""Shared pytest fixtures.

Model fixtures load the offline default model (Gemma 3 270M) once per test
session through :func:`llm_auction_utils.llm.models.load_model`; when its converted
copy is not cached yet they prepare it first (about two minutes, once).  Tests
that use them are marked ``@pytest.mark.model``; deselect with ``-m "not model"``.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import settings

# The test command runs hypothesis derandomized (profile "ci"): the same examples on every
# run, so a green run stays green.  HYPOTHESIS_PROFILE=default explores new examples.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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
def tiny_model(default_model):
    """A tiny randomly initialised Gemma 3 sharing the default model's tokenizer and vocabulary
    (a second, cheap 'model' for multi-model agents)."""
    from transformers import Gemma3TextConfig, Gemma3ForCausalLM

    from llm_auction_utils.llm.models import LoadedModel

    torch.manual_seed(1234)
    cfg = Gemma3TextConfig(
        vocab_size=default_model.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        sliding_window=64,
        bos_token_id=default_model.tokenizer.bos_token_id,
        eos_token_id=default_model.tokenizer.eos_token_id,
        pad_token_id=default_model.tokenizer.pad_token_id,
    )
    model = Gemma3ForCausalLM(cfg).to(default_model.device).eval().requires_grad_(False)
    return LoadedModel(model=model, tokenizer=default_model.tokenizer, name="tiny-random-gemma3",
                       device=default_model.device, dtype=torch.float32)
