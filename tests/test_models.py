"""Tests of :mod:`llm_auction_utils.llm.models`: offline loading, caches, clear errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from llm_auction_utils.llm import models as M
from llm_auction_utils.llm.models import (
    DEFAULT_MODEL,
    LoadedModel,
    ModelLoadError,
    TokenizerMismatchError,
    cache_dir,
    check_shared_tokenizer,
    load_model,
    resolve_device,
    resolve_dtype,
)


# --------------------------------------------------------------------------- helpers


def _word_level_model(words: list[str]) -> LoadedModel:
    """A tiny random causal LM with its own word-level tokenizer (vocabulary ``words``)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", *words])}
    raw = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", eos_token="<eos>",
                                  bos_token="<bos>", unk_token="<unk>", padding_side="left")
    cfg = Gemma3TextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                           num_attention_heads=1, num_key_value_heads=1, head_dim=16,
                           pad_token_id=0, eos_token_id=1, bos_token_id=2)
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(cfg).eval()
    return LoadedModel(model=model, tokenizer=tok, name=f"words{len(words)}", device=torch.device("cpu"))


# --------------------------------------------------------------------------- no model needed


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_AUCTION_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert M.default_model_dir().parent == tmp_path / "c"
    assert not M.is_default_model_prepared()
    monkeypatch.delenv("LLM_AUCTION_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "llm-auction-workbook"


def test_resolve_device_and_dtype():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu0")
    with pytest.raises(TypeError):
        resolve_device(3)  # type: ignore[arg-type]
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    assert resolve_dtype("float32") is torch.float32
    assert resolve_dtype("bfloat16") is torch.bfloat16
    assert resolve_dtype("fp16") is torch.float16
    assert resolve_dtype(torch.bfloat16) is torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int8")
    with pytest.raises(ValueError, match="unsupported model dtype"):
        resolve_dtype(torch.int32)


def test_unknown_model_names_the_offline_default():
    t0 = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        load_model("no-such-org/no-such-model-xyz", device="cpu")
    msg = str(info.value)
    assert "no-such-org/no-such-model-xyz" in msg and DEFAULT_MODEL in msg and "offline" in msg
    assert isinstance(info.value, OSError)
    assert time.perf_counter() - t0 < 30  # offline: no network retries


def test_missing_local_path_and_bad_arguments(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model folder"):
        load_model(str(tmp_path / "missing-model"), device="cpu")
    with pytest.raises(ModelLoadError, match=DEFAULT_MODEL):
        load_model(str(tmp_path), device="cpu")  # an empty folder is not a model
    with pytest.raises(ValueError, match="empty"):
        load_model("  ")
    with pytest.raises(ValueError, match="unknown dtype"):
        load_model("whatever", dtype="int4")
    with pytest.raises(TypeError):
        load_model(42)  # type: ignore[arg-type]


def test_different_tokenizers_are_refused():
    a = _word_level_model(["sun", "sea", "sand"])
    b = _word_level_model(["sun", "sea", "snow"])
    check_shared_tokenizer([a, a])  # one model: fine
    with pytest.raises(TokenizerMismatchError, match="different tokenizers"):
        check_shared_tokenizer([a, b])
    with pytest.raises(ValueError):  # TokenizerMismatchError is a ValueError
        check_shared_tokenizer([b, a])
    with pytest.raises(ValueError, match="no models"):
        check_shared_tokenizer([])


def test_engine_refuses_models_with_different_tokenizers():
    from llm_auction_utils.llm.engine import run_auction

    a = _word_level_model(["sun", "sea", "sand"])
    b = _word_level_model(["sun", "sea", "snow"])
    with pytest.raises(TokenizerMismatchError):
        run_auction(["sun sea", "sea sun"], [1, 1], model=[a, b], max_new_tokens=2)


# --------------------------------------------------------------------------- default model


@pytest.mark.model
def test_default_model_loads_offline_and_is_cached_in_process(default_model):
    lm = default_model
    assert lm.name == DEFAULT_MODEL
    assert lm.vocab_size == 262_144
    assert lm.tokenizer.padding_side == "left"
    assert lm.tokenizer.pad_token_id == 0 and lm.tokenizer.bos_token_id == 2
    assert 1 in lm.eos_token_ids
    assert lm.device == resolve_device("auto")
    assert next(lm.model.parameters()).dtype == torch.float32
    assert not any(p.requires_grad for p in lm.model.parameters())
    assert not lm.model.training
    # in-process cache keyed by (name, device, dtype): no reload
    t0 = time.perf_counter()
    again = load_model(DEFAULT_MODEL, device=lm.device, dtype=torch.float32)
    assert again is lm and time.perf_counter() - t0 < 1.0
    assert load_model("default", device=lm.device) is not None  # alias of the same files
    # the converted cache is complete and prepare is idempotent (returns at once)
    assert M.is_default_model_prepared()
    t0 = time.perf_counter()
    assert M.prepare_default_model(verbose=False) == M.default_model_dir()
    assert time.perf_counter() - t0 < 1.0
    check_shared_tokenizer([lm, lm])


@pytest.mark.model
def test_default_model_predicts_sensible_text(default_model):
    lm = default_model
    ids = lm.tokenizer("The Eiffel Tower is in the city of", return_tensors="pt").to(lm.device)
    with torch.inference_mode():
        logits = lm.model(**ids).logits[0, -1]
    top5 = [lm.tokenizer.decode([int(t)]).strip() for t in logits.topk(5).indices]
    assert "Paris" in top5, top5
